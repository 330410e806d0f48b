import { request } from "./http";
import type { Engine, RecResult } from "./types";

/** The recommendation service (Harness API) mounted under the FL-API. */
export const listEngines = () => request<string[]>("/recommender/engines");
export const getEngine = (id: string) =>
  request<Engine>(`/recommender/engines/${encodeURIComponent(id)}`);
export const queryEngine = (id: string, user: string, num: number) =>
  request<RecResult>(`/recommender/engines/${encodeURIComponent(id)}/queries`, {
    method: "POST",
    body: { user, num },
  });
