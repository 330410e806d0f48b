"""Rate limits on the device protocol: per device credential and per app token, per minute.

Fixed one-minute windows counted in the shared cache (Redis across replicas, in-process
otherwise). The key is a hash of the credential, never the credential. Customer routes
(``/api``) are not limited here; nginx limits them per client address.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from lerna.server.cache import Cache
from lerna.server.settings import Settings

WINDOW = 60.0


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def limit_key(scope: Scope, settings: Settings) -> tuple[str, int] | None:
    """The counter and its limit for this request, or None when it is not limited."""
    auth = _header(scope, b"authorization")
    if auth and auth.lower().startswith("bearer "):
        digest = hashlib.sha256(auth[7:].encode()).hexdigest()[:32]
        return f"rl:dev:{digest}", settings.rate_limit_device_per_minute
    token = _header(scope, b"x-app-token")
    if token:
        digest = hashlib.sha256(token.encode()).hexdigest()[:32]
        return f"rl:app:{digest}", settings.rate_limit_app_per_minute
    return None


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        found = limit_key(scope, self.settings)
        if found is None or found[1] == 0:
            await self.app(scope, receive, send)
            return
        key, limit = found
        window = int(time.time() // WINDOW)
        cache: Cache = scope["app"].state.cache
        counter = f"{key}:{window}"
        if cache.blocking:  # off the event loop: a slow Redis must not stall other requests
            count = await anyio.to_thread.run_sync(cache.incr, counter, WINDOW + 5)
        else:
            count = cache.incr(counter, WINDOW + 5)
        if count <= limit:
            await self.app(scope, receive, send)
            return
        retry = max(1, int((window + 1) * WINDOW - time.time()) + 1)
        body = json.dumps(
            {"code": "rate_limited", "message": f"more than {limit} requests a minute; slow down"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(retry).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class ConcurrencyLimitMiddleware:
    """Admits at most ``limit`` requests at a time; the rest wait their turn (FIFO).

    Why: a request takes a pooled database connection in one worker-thread hop (the device or
    customer lookup) and keeps it while it waits for another hop (the route body). When more
    requests are in flight than the pool holds, every worker thread can end up waiting for a
    connection that only a request waiting for a worker thread can return: a deadlock that
    lasts until the pool's 30 s timeout (500s, then 504s from nginx). Keeping in-flight
    requests below the pool size makes that impossible and turns overload into queueing.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit
        self._semaphore: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.limit)
        async with self._semaphore:
            await self.app(scope, receive, send)
