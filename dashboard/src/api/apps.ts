import { request } from "./http";
import type { App, AppStats, AppWithToken, WeekActivity } from "./types";

export const listApps = () => request<App[]>("/api/apps");
export const getApp = (id: number) => request<App>(`/api/apps/${id}`);
export const createApp = (name: string) =>
  request<AppWithToken>("/api/apps", { method: "POST", body: { name } });
export const renameApp = (id: number, name: string) =>
  request<App>(`/api/apps/${id}`, { method: "PATCH", body: { name } });
export const deleteApp = (id: number) => request<void>(`/api/apps/${id}`, { method: "DELETE" });
export const rotateToken = (id: number) =>
  request<AppWithToken>(`/api/apps/${id}/token`, { method: "POST" });
export const appStats = (id: number) => request<AppStats>(`/api/apps/${id}/stats`);
export const appActivity = (id: number, weeks = 12) =>
  request<WeekActivity[]>(`/api/apps/${id}/activity?weeks=${weeks}`);
