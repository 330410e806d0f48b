import { mount } from "@vue/test-utils";
import TokenReveal from "./TokenReveal.vue";
import { settle } from "@/test/fakeServer";

describe("TokenReveal", () => {
  it("shows the token once with a copy button and the SDK snippet", async () => {
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    const w = mount(TokenReveal, { props: { appName: "News", token: "app_secret_token_123" } });
    expect((w.get("#app-token").element as HTMLInputElement).value).toBe("app_secret_token_123");
    expect(w.get("label[for=app-token]").text()).toBe("App token");
    expect(w.get("pre").text()).toContain('LernaClient("app_secret_token_123"');
    expect(w.text()).toContain("only time the token is shown");
    await w.findAll("button").find((b) => b.text() === "Copy token")!.trigger("click");
    await settle();
    expect(writeText).toHaveBeenCalledWith("app_secret_token_123");
    expect(w.text()).toContain("Copied to the clipboard.");
    await w.findAll("button").find((b) => b.text() === "I have stored the token")!.trigger("click");
    expect(w.emitted("dismiss")).toHaveLength(1);
  });

  it("tells the person to copy by hand when the browser refuses", async () => {
    Object.defineProperty(navigator, "clipboard", { value: { writeText: () => Promise.reject(new Error("denied")) }, configurable: true });
    const w = mount(TokenReveal, { props: { appName: "News", token: "t" } });
    await w.findAll("button").find((b) => b.text() === "Copy token")!.trigger("click");
    await settle();
    expect(w.text()).toContain("copy it by hand");
  });
});
