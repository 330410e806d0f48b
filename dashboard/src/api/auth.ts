import { request } from "./http";
import type { Customer, TokenPublic } from "./types";

export interface SignUp {
  email: string;
  password: string;
  name: string;
  company: string;
  position: string;
}

export const register = (data: SignUp) =>
  request<Customer>("/api/auth/register", { method: "POST", body: data, anonymous: true });

export const login = (email: string, password: string) =>
  request<TokenPublic>("/api/auth/login", {
    method: "POST",
    body: { email, password },
    anonymous: true,
  });

export const me = () => request<Customer>("/api/me");

export const updateMe = (data: Partial<Pick<Customer, "name" | "company" | "position">>) =>
  request<Customer>("/api/me", { method: "PATCH", body: data });

export const changePassword = (current_password: string, new_password: string) =>
  request<void>("/api/me/password", { method: "POST", body: { current_password, new_password } });
