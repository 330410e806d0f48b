/**
 * The logged-in customer: the FL-API's JWT (kept in localStorage with its expiry, so a reload
 * keeps the session and an expired one is dropped before any request) and the profile.
 */
import { defineStore } from "pinia";
import { computed, ref } from "vue";
import * as auth from "@/api/auth";
import type { Customer } from "@/api/types";

const KEY = "lerna.session";

interface Stored {
  token: string;
  expiresAt: number;
}

function load(): Stored | null {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return null;
    const parsed = JSON.parse(raw) as Partial<Stored>;
    if (typeof parsed.token !== "string" || typeof parsed.expiresAt !== "number") return null;
    return { token: parsed.token, expiresAt: parsed.expiresAt };
  } catch {
    return null;
  }
}

export const useSession = defineStore("session", () => {
  const stored = ref<Stored | null>(load());
  const customer = ref<Customer | null>(null);
  /** Set when the server refused the token, so the login page can say why. */
  const expired = ref(false);

  const token = computed(() => {
    const s = stored.value;
    return s && s.expiresAt > Date.now() ? s.token : null;
  });
  const loggedIn = computed(() => token.value !== null);

  function save(next: Stored | null): void {
    stored.value = next;
    if (next) localStorage.setItem(KEY, JSON.stringify(next));
    else localStorage.removeItem(KEY);
  }

  async function login(email: string, password: string): Promise<void> {
    const t = await auth.login(email, password);
    save({ token: t.access_token, expiresAt: Date.now() + t.expires_in * 1000 });
    expired.value = false;
    customer.value = await auth.me();
  }

  async function loadProfile(): Promise<Customer> {
    if (!customer.value) customer.value = await auth.me();
    return customer.value;
  }

  function logout(reason: "user" | "expired" = "user"): void {
    save(null);
    customer.value = null;
    expired.value = reason === "expired";
  }

  return { token, loggedIn, customer, expired, login, loadProfile, logout, setCustomer: (c: Customer) => (customer.value = c) };
});
