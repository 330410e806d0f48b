import { mount } from "@vue/test-utils";
import AsyncBlock from "./AsyncBlock.vue";

const slots = { default: "<p>content</p>" };

describe("AsyncBlock", () => {
  it("shows a loading state while the request runs", () => {
    const w = mount(AsyncBlock, { props: { loading: true, error: null }, slots });
    expect(w.get('[role="status"]').text()).toBe("Loading…");
    expect(w.text()).not.toContain("content");
    expect(w.get(".async-block").attributes("aria-busy")).toBe("true");
  });

  it("shows the error with a retry button instead of the content", async () => {
    const w = mount(AsyncBlock, { props: { loading: false, error: "Cannot reach the server." }, slots });
    expect(w.get('[role="alert"]').text()).toContain("Cannot reach the server.");
    await w.get("button").trigger("click");
    expect(w.emitted("retry")).toHaveLength(1);
    expect(w.text()).not.toContain("content");
  });

  it("says plainly that a missing feature is off", () => {
    const w = mount(AsyncBlock, { props: { loading: false, error: null, missing: true, feature: "Webhooks" }, slots });
    expect(w.text()).toContain("Webhooks is off on this server: this feature is off.");
    expect(w.text()).not.toContain("content");
  });

  it("shows the content once loaded", () => {
    expect(mount(AsyncBlock, { props: { loading: false, error: null }, slots }).text()).toBe("content");
  });
});
