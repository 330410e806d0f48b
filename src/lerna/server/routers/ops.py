"""Operations surface: readiness, metrics, and the wiring of the operations features.

``install`` is the single call the app factory makes: it adds the middleware (request ids,
access logs, latency metrics, rate limits), the routers (webhooks, remote config, logs) and
the shared objects they use on ``app.state``. ``start_background`` starts the webhook worker
(which also runs log retention) and returns the function that stops it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from lerna import __version__
from lerna.server import cache as cache_mod
from lerna.server import logging_setup, metrics, ratelimit
from lerna.server.routers import logs, remote_config, webhooks
from lerna.server.services import devices, logstore
from lerna.server.services.webhooks import SecretBox
from lerna.server.settings import Settings
from lerna.server.webhook_worker import WebhookWorker

router = APIRouter(tags=["ops"])


@router.get("/ready", responses={503: {"description": "a dependency is unreachable"}})
def ready(request: Request) -> JSONResponse:
    """Readiness: the database (and Redis, when configured) answer. Liveness is ``/health``."""
    checks: dict[str, str] = {}
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means not ready
        checks["database"] = f"error: {type(exc).__name__}"
    redis_ok = request.app.state.cache.ping()
    if redis_ok is not None:
        checks["redis"] = "ok" if redis_ok else "error"
    ok = all(v == "ok" for v in checks.values())
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "version": __version__}
    return JSONResponse({**body, "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response, include_in_schema=False)
def prometheus_metrics(request: Request) -> Response:
    body, content_type = metrics.render(request.app.state.metrics)
    return Response(body, media_type=content_type)


def install(app: FastAPI, settings: Settings) -> None:
    logging_setup.configure(settings.log_format)
    app.state.secret_box = SecretBox(settings.resolved_secrets_key())
    app.state.cache = cache_mod.make_cache(settings.redis_url)
    for engine in {app.state.engine, app.state.read_engine}:
        devices.use_cache(engine, app.state.cache, settings.device_cache_seconds)
    app.state.log_store = logstore.make_store(settings)
    app.state.metrics = metrics.Metrics(app.state.session_factory)
    app.add_middleware(ratelimit.ConcurrencyLimitMiddleware, limit=_inflight_limit(app, settings))
    app.add_middleware(ratelimit.RateLimitMiddleware, settings=settings)
    app.add_middleware(metrics.MetricsMiddleware)
    app.add_middleware(logging_setup.RequestContextMiddleware)
    app.include_router(router)
    app.include_router(webhooks.router)
    app.include_router(remote_config.router)
    app.include_router(remote_config.device_router)
    app.include_router(logs.router)
    app.include_router(logs.device_router)


def _inflight_limit(app: FastAPI, settings: Settings) -> int:
    """Requests admitted at once: below the connection pool, less the ticker's and the
    webhook worker's connections and one spare (see ``ConcurrencyLimitMiddleware``)."""
    pool = app.state.engine.pool
    size = getattr(pool, "size", lambda: 0)() + max(getattr(pool, "_max_overflow", 0), 0)
    return (
        max(1, min(settings.max_inflight_requests, size - 3))
        if size > 0
        else settings.max_inflight_requests
    )


def start_background(app: FastAPI) -> Callable[[], None]:
    settings: Settings = app.state.settings
    store: logstore.LogStore = app.state.log_store
    worker = WebhookWorker(
        app.state.session_factory,
        settings,
        app.state.secret_box,
        periodic=[(3600.0, lambda: store.purge_older_than(settings.log_retention_days))],
    ).start()
    app.state.webhook_worker = worker

    def stop() -> None:
        worker.stop()
        app.state.cache.close()

    return stop
