import { mount } from "@vue/test-utils";
import { fakeServer, settle } from "@/test/fakeServer";
import IntegrationsView from "./IntegrationsView.vue";

describe("IntegrationsView", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("says the feature is off when the server has no webhooks endpoint", async () => {
    vi.stubGlobal("fetch", fakeServer({}).fetch);
    const w = mount(IntegrationsView, { props: { appId: 1 } });
    await settle();
    expect(w.text()).toContain("Webhooks is off on this server: this feature is off.");
    expect(w.find("form").exists()).toBe(false);
  });

  it("adds a webhook and reports the test delivery", async () => {
    const hook = { id: 4, kind: "https", url: "https://example.com/h", events: ["version_published"], enabled: true };
    const server = fakeServer({
      "GET /api/apps/1/webhooks": { body: [] },
      "POST /api/apps/1/webhooks": { status: 201, body: hook },
      "POST /api/apps/1/webhooks/4/test": { body: { delivered: false, status_code: 502, error: null } },
    });
    vi.stubGlobal("fetch", server.fetch);
    const w = mount(IntegrationsView, { props: { appId: 1 } });
    await settle();
    await w.get("#wh-url").setValue("nope");
    await w.get("form").trigger("submit");
    expect(w.text()).toContain("Enter a full URL");
    await w.get("#wh-url").setValue("https://example.com/h");
    await w.get("#wh-secret").setValue("a-secret-of-enough-length");
    await w.get("form").trigger("submit");
    await settle();
    expect(server.calls[1]!.body).toEqual({ kind: "https", url: "https://example.com/h", events: ["version_published"], enabled: true, secret: "a-secret-of-enough-length" });
    await w.findAll("button").find((b) => b.text() === "Send test")!.trigger("click");
    await settle();
    expect(w.get('[data-testid="webhook-test-result"]').text()).toBe("Not delivered: HTTP 502.");
  });
});
