import { download, request } from "./http";
import type { PrivacySpent, Round, Task, TaskUpdate, Version } from "./types";

const base = (appId: number) => `/api/apps/${appId}/tasks`;

export const listTasks = (appId: number) => request<Task[]>(base(appId));
export const updateTask = (appId: number, taskId: number, data: TaskUpdate) =>
  request<Task>(`${base(appId)}/${taskId}`, { method: "PATCH", body: data });
export const listVersions = (appId: number, taskId: number) =>
  request<Version[]>(`${base(appId)}/${taskId}/versions`);
export const listRounds = (appId: number, taskId: number, limit = 50) =>
  request<Round[]>(`${base(appId)}/${taskId}/rounds?limit=${limit}`);
export const exportWeights = (appId: number, taskId: number, version: number) =>
  download(`${base(appId)}/${taskId}/versions/${version}/weights`);
export const privacySpent = (appId: number, taskId: number) =>
  request<PrivacySpent>(`${base(appId)}/${taskId}/privacy`);
