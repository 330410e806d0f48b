import { mount } from "@vue/test-utils";
import ConfirmDialog from "./ConfirmDialog.vue";
import { settle } from "@/test/fakeServer";

describe("ConfirmDialog", () => {
  it("is a labelled modal that starts on Cancel and closes with Escape", async () => {
    const w = mount(ConfirmDialog, { props: { title: "Delete “News”?", message: "Gone for good." }, attachTo: document.body });
    await settle();
    const dialog = w.get('[role="dialog"]');
    expect(dialog.attributes("aria-modal")).toBe("true");
    expect(document.getElementById(dialog.attributes("aria-labelledby")!)!.textContent).toBe("Delete “News”?");
    expect(document.activeElement?.textContent).toBe("Cancel");
    await dialog.trigger("keydown", { key: "Escape" });
    expect(w.emitted("cancel")).toHaveLength(1);
    w.unmount();
  });

  it("confirms with its own button", async () => {
    const w = mount(ConfirmDialog, { props: { title: "t", message: "m", confirmLabel: "Delete app", danger: true } });
    await w.findAll("button").find((b) => b.text() === "Delete app")!.trigger("click");
    expect(w.emitted("confirm")).toHaveLength(1);
  });
});
