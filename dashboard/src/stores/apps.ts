/** The customer's apps, shared by the sidebar's app picker and the Apps page. */
import { defineStore } from "pinia";
import { ref } from "vue";
import * as api from "@/api/apps";
import type { App } from "@/api/types";

export const useApps = defineStore("apps", () => {
  const apps = ref<App[]>([]);
  const loaded = ref(false);

  async function refresh(): Promise<App[]> {
    apps.value = await api.listApps();
    loaded.value = true;
    return apps.value;
  }

  function upsert(app: App): void {
    const i = apps.value.findIndex((a) => a.id === app.id);
    if (i >= 0) apps.value.splice(i, 1, app);
    else apps.value.push(app);
  }

  function remove(id: number): void {
    apps.value = apps.value.filter((a) => a.id !== id);
  }

  return { apps, loaded, refresh, upsert, remove };
});
