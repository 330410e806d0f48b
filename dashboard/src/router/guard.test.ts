import { createPinia, setActivePinia } from "pinia";
import { defineComponent } from "vue";
import { createMemoryHistory, createRouter } from "vue-router";
import { installGuard } from "./index";

const Page = defineComponent({ template: "<div />" });

function makeRouter() {
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: "/login", name: "login", component: Page, meta: { public: true } },
      { path: "/apps", name: "apps", component: Page },
      { path: "/apps/:id/models", name: "models", component: Page },
    ],
  });
  installGuard(router);
  return router;
}

describe("auth guard", () => {
  beforeEach(() => {
    localStorage.clear();
    setActivePinia(createPinia());
  });

  it("sends a visitor without a session to the login page, keeping where they were going", async () => {
    const router = makeRouter();
    await router.push("/apps/3/models");
    expect(router.currentRoute.value.name).toBe("login");
    expect(router.currentRoute.value.query.next).toBe("/apps/3/models");
  });

  it("treats an expired stored session as none", async () => {
    localStorage.setItem("lerna.session", JSON.stringify({ token: "t", expiresAt: Date.now() - 1000 }));
    const router = makeRouter();
    await router.push("/apps");
    expect(router.currentRoute.value.name).toBe("login");
  });

  it("lets a live session through and skips the login page", async () => {
    localStorage.setItem("lerna.session", JSON.stringify({ token: "t", expiresAt: Date.now() + 60_000 }));
    const router = makeRouter();
    await router.push("/apps");
    expect(router.currentRoute.value.name).toBe("apps");
    await router.push("/login");
    expect(router.currentRoute.value.name).toBe("apps");
  });
});
