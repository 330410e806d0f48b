import type { InjectionKey, ShallowRef } from "vue";
import type { App } from "@/api/types";

export const APP_KEY: InjectionKey<ShallowRef<App | null>> = Symbol("app");
