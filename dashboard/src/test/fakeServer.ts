/**
 * A stand-in for the FL-API at the process edge (window.fetch) for component tests: routes are
 * "METHOD /path" with a JSON answer, and every request is recorded so tests can check the body.
 */
export interface Answer {
  status?: number;
  body?: unknown;
}

export interface Recorded {
  method: string;
  path: string;
  body: unknown;
  auth: string | null;
}

export function fakeServer(routes: Record<string, Answer | ((body: unknown) => Answer)>) {
  const calls: Recorded[] = [];
  const fetch = async (input: string, init: RequestInit = {}): Promise<Response> => {
    const method = init.method ?? "GET";
    const path = input.split("?")[0]!;
    const body = typeof init.body === "string" ? (JSON.parse(init.body) as unknown) : null;
    const headers = (init.headers ?? {}) as Record<string, string>;
    calls.push({ method, path, body, auth: headers.Authorization ?? null });
    const route = routes[`${method} ${path}`];
    const answer = typeof route === "function" ? route(body) : (route ?? { status: 404, body: { code: "not_found", message: "Not Found" } });
    const status = answer.status ?? 200;
    return new Response(status === 204 ? null : JSON.stringify(answer.body ?? null), {
      status,
      headers: { "Content-Type": "application/json" },
    });
  };
  return { fetch, calls };
}

/** Let pending promises and Vue's re-render run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
}
