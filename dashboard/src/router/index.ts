import { createRouter, createWebHistory, type RouteRecordRaw, type Router } from "vue-router";
import { useSession } from "@/stores/session";

const routes: RouteRecordRaw[] = [
  {
    path: "/",
    component: () => import("@/layouts/AuthLayout.vue"),
    children: [
      { path: "login", name: "login", component: () => import("@/views/auth/LoginView.vue"), meta: { public: true, title: "Log in" } },
      { path: "signup", name: "signup", component: () => import("@/views/auth/SignupView.vue"), meta: { public: true, title: "Sign up" } },
    ],
  },
  {
    path: "/",
    component: () => import("@/layouts/AdminLayout.vue"),
    children: [
      { path: "", redirect: { name: "apps" } },
      { path: "apps", name: "apps", component: () => import("@/views/apps/AppsView.vue"), meta: { title: "Apps" } },
      {
        path: "apps/:appId(\\d+)",
        component: () => import("@/views/apps/AppScope.vue"),
        props: (route) => ({ appId: Number(route.params.appId) }),
        children: [
          { path: "", redirect: { name: "overview" } },
          { path: "overview", name: "overview", component: () => import("@/views/overview/OverviewView.vue"), meta: { title: "Overview" } },
          { path: "models", name: "models", component: () => import("@/views/models/ModelsView.vue"), meta: { title: "Models" } },
          { path: "integrations", name: "integrations", component: () => import("@/views/integrations/IntegrationsView.vue"), meta: { title: "Integrations" } },
          { path: "devices", name: "devices", component: () => import("@/views/devices/DevicesView.vue"), meta: { title: "Devices" } },
          { path: "recommendations", name: "recommendations", component: () => import("@/views/recommendations/RecommendationsView.vue"), meta: { title: "Recommendations" } },
        ],
      },
      { path: "profile", name: "profile", component: () => import("@/views/profile/ProfileView.vue"), meta: { title: "Profile" } },
      { path: "help", name: "help", component: () => import("@/views/help/HelpView.vue"), meta: { title: "Help" } },
      { path: ":pathMatch(.*)*", name: "not-found", component: () => import("@/views/NotFoundView.vue"), meta: { title: "Not found" } },
    ],
  },
];

/** The auth guard: pages need a live session; login and sign-up are skipped when logged in. */
export function installGuard(router: Router): void {
  router.beforeEach((to) => {
    const session = useSession();
    const isPublic = to.meta.public === true;
    if (!isPublic && !session.loggedIn) {
      return { name: "login", query: to.fullPath !== "/" ? { next: to.fullPath } : {} };
    }
    if (isPublic && session.loggedIn) return { name: "apps" };
    return true;
  });
  router.afterEach((to) => {
    const title = typeof to.meta.title === "string" ? to.meta.title : "";
    document.title = title ? `${title} · Lerna` : "Lerna dashboard";
  });
}

export function makeRouter(): Router {
  const router = createRouter({ history: createWebHistory(), routes });
  installGuard(router);
  return router;
}
