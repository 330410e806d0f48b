import { createPinia } from "pinia";
import { createApp } from "vue";
import App from "./App.vue";
import { configureAuth } from "./api/http";
import { makeRouter } from "./router";
import { useSession } from "./stores/session";
import "./styles.css";

const app = createApp(App);
const pinia = createPinia();
app.use(pinia);
const router = makeRouter();
const session = useSession(pinia);

// An expired or revoked session sends the person back to the login page, keeping where they were.
configureAuth({
  token: () => session.token,
  onUnauthorized: () => {
    session.logout("expired");
    const here = router.currentRoute.value;
    if (here.name !== "login") void router.push({ name: "login", query: { next: here.fullPath } });
  },
});

app.use(router);
app.mount("#app");
