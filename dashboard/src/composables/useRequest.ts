/**
 * One request's state for a view: loading, the data, a readable error, and whether the endpoint
 * is missing on this server (a feature that is not deployed), which views show as "off".
 */
import { ref, shallowRef, type Ref, type ShallowRef } from "vue";
import { ApiError } from "@/api/http";

export interface RequestState<T> {
  data: ShallowRef<T | null>;
  loading: Ref<boolean>;
  error: Ref<string | null>;
  missing: Ref<boolean>;
  run: () => Promise<T | null>;
}

export function messageOf(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return "Something went wrong.";
}

export function useRequest<T>(fn: () => Promise<T>, opts: { missingIsOff?: boolean } = {}): RequestState<T> {
  const data = shallowRef<T | null>(null);
  const loading = ref(false);
  const error = ref<string | null>(null);
  const missing = ref(false);
  let seq = 0;

  async function run(): Promise<T | null> {
    const mine = ++seq;
    loading.value = true;
    error.value = null;
    try {
      const value = await fn();
      if (mine === seq) {
        data.value = value;
        missing.value = false;
      }
      return value;
    } catch (err) {
      if (mine !== seq) return null;
      if (opts.missingIsOff && err instanceof ApiError && err.isMissing) missing.value = true;
      else error.value = messageOf(err);
      return null;
    } finally {
      if (mine === seq) loading.value = false;
    }
  }

  return { data, loading, error, missing, run };
}
