import { request } from "./http";
import type { Device } from "./types";

export const searchDevices = (appId: number, q: string, limit = 50) =>
  request<Device[]>(`/api/apps/${appId}/devices?q=${encodeURIComponent(q)}&limit=${limit}`);

export const setBlacklist = (
  appId: number,
  deviceId: number,
  block: { block_training: boolean; block_predictions: boolean },
) => request<Device>(`/api/apps/${appId}/devices/${deviceId}/blacklist`, { method: "PUT", body: block });
