import { request } from "./http";
import type { Webhook, WebhookInput, WebhookTestResult } from "./types";

const base = (appId: number) => `/api/apps/${appId}/webhooks`;

export const listWebhooks = (appId: number) => request<Webhook[]>(base(appId));
export const createWebhook = (appId: number, data: WebhookInput) =>
  request<Webhook>(base(appId), { method: "POST", body: data });
export const updateWebhook = (appId: number, id: number, data: Partial<WebhookInput>) =>
  request<Webhook>(`${base(appId)}/${id}`, { method: "PATCH", body: data });
export const deleteWebhook = (appId: number, id: number) =>
  request<void>(`${base(appId)}/${id}`, { method: "DELETE" });
export const testWebhook = (appId: number, id: number) =>
  request<WebhookTestResult>(`${base(appId)}/${id}/test`, { method: "POST" });
