import { ApiError, configureAuth, request } from "./http";
import { fakeServer } from "@/test/fakeServer";

describe("request", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("sends the bearer token and returns the JSON body", async () => {
    const server = fakeServer({ "GET /api/me": { body: { id: 1 } } });
    vi.stubGlobal("fetch", server.fetch);
    configureAuth({ token: () => "tok", onUnauthorized: () => undefined });
    await expect(request("/api/me")).resolves.toEqual({ id: 1 });
    expect(server.calls[0]!.auth).toBe("Bearer tok");
  });

  it("turns the server's {code, message} into an ApiError people can read", async () => {
    vi.stubGlobal("fetch", fakeServer({ "PATCH /api/x": { status: 422, body: { code: "invalid", message: "cohort_size: too small" } } }).fetch);
    const err = await request("/api/x", { method: "PATCH", body: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 422, code: "invalid", message: "cohort_size: too small" });
  });

  it("ends the session when the server refuses the token", async () => {
    const onUnauthorized = vi.fn();
    configureAuth({ token: () => "expired", onUnauthorized });
    vi.stubGlobal("fetch", fakeServer({ "GET /api/apps": { status: 401, body: { code: "bad_token", message: "session expired" } } }).fetch);
    await expect(request("/api/apps")).rejects.toMatchObject({ status: 401 });
    expect(onUnauthorized).toHaveBeenCalledOnce();
  });

  it("explains a network failure", async () => {
    vi.stubGlobal("fetch", () => Promise.reject(new TypeError("Failed to fetch")));
    await expect(request("/api/apps")).rejects.toMatchObject({ code: "network", message: expect.stringMatching(/Cannot reach the server/) });
  });
});
