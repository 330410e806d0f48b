import { mount } from "@vue/test-utils";
import ChartPanel from "./ChartPanel.vue";

describe("ChartPanel", () => {
  // jsdom has no canvas: the component then keeps its text alternative only.
  const original = HTMLCanvasElement.prototype.getContext;
  beforeAll(() => Object.defineProperty(HTMLCanvasElement.prototype, "getContext", { value: () => null, configurable: true }));
  afterAll(() => Object.defineProperty(HTMLCanvasElement.prototype, "getContext", { value: original, configurable: true }));

  it("says there is no data yet instead of drawing an empty chart", () => {
    const w = mount(ChartPanel, { props: { title: "Accuracy", kind: "line", labels: [], series: [], empty: "No versions yet." } });
    expect(w.text()).toContain("No versions yet.");
    expect(w.get("figure").attributes("data-points")).toBe("0");
  });

  it("counts its points and gives screen readers the same numbers as a table", () => {
    const w = mount(ChartPanel, {
      props: { title: "Accuracy", kind: "line", labels: ["v1", "v2"], series: [{ label: "ndcg@10", data: [0.1, null] }] },
    });
    expect(w.get("figure").attributes("data-points")).toBe("1");
    expect(w.get("canvas").attributes("aria-label")).toContain("Accuracy");
    const cells = w.findAll("tbody tr").map((r) => r.text());
    expect(cells).toEqual(["v10.1", "v2—"]);
  });
});
