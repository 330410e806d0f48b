/**
 * The one place that talks HTTP. Every FL-API error body is {"code", "message"}; anything else
 * (a proxy's HTML page, a dropped connection) is turned into the same shape so views can always
 * show `error.message` to a person.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The endpoint does not exist on this server: the feature is not deployed. */
  get isMissing(): boolean {
    return this.status === 404;
  }
}

interface AuthHooks {
  token(): string | null;
  onUnauthorized(): void;
}

let hooks: AuthHooks = { token: () => null, onUnauthorized: () => undefined };

/** Wired once at start-up by the session store, so this module has no import of the store. */
export function configureAuth(next: AuthHooks): void {
  hooks = next;
}

function describe(status: number, body: unknown): ApiError {
  if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    if (typeof b.message === "string") {
      return new ApiError(status, typeof b.code === "string" ? b.code : "error", b.message);
    }
    if (typeof b.detail === "string") return new ApiError(status, "error", b.detail);
  }
  const fallback: Record<number, string> = {
    401: "Your session has ended; please log in again.",
    403: "You are not allowed to do that.",
    404: "Not found.",
    413: "The request is too large.",
    429: "Too many requests; wait a moment and try again.",
  };
  return new ApiError(
    status,
    "http_" + status,
    fallback[status] ?? `The server answered with an error (HTTP ${status}).`,
  );
}

export interface RequestOptions {
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  body?: unknown;
  /** Skip the bearer token (login, sign-up). */
  anonymous?: boolean;
  signal?: AbortSignal;
}

async function send(path: string, opts: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const token = opts.anonymous ? null : hooks.token();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(path, {
      method: opts.method ?? "GET",
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "Cannot reach the server. Check your connection and retry.");
  }
  if (!res.ok) {
    let body: unknown = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    const error = describe(res.status, body);
    if (res.status === 401 && token) hooks.onUnauthorized();
    throw error;
  }
  return res;
}

export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await send(path, opts);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** A binary download (weights export): the bytes and the file name the server suggests. */
export async function download(path: string): Promise<{ blob: Blob; filename: string | null }> {
  const res = await send(path, { method: "GET" });
  const disposition = res.headers.get("Content-Disposition") ?? "";
  const match = /filename="?([^";]+)"?/.exec(disposition);
  return { blob: await res.blob(), filename: match?.[1] ?? null };
}
