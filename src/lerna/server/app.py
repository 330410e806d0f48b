"""FL-API application factory: assembles settings, database, routers and the round ticker."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from lerna import __version__
from lerna.server.db import make_engine, make_read_engine, make_session_factory, transaction
from lerna.server.errors import install_handlers
from lerna.server.migrate import upgrade
from lerna.server.routers import apps, auth, device, ops, recommendations, secure, two_server
from lerna.server.services.rounds import close_if_due, due_rounds
from lerna.server.settings import Settings
from lerna.server.spa import DASHBOARD_DIST, mount_spa

log = logging.getLogger("lerna.server")


def _ticker(app: FastAPI, stop: threading.Event) -> None:
    """Close rounds whose deadlines passed, even when no device calls in."""
    while not stop.wait(app.state.settings.tick_seconds):
        try:
            now = datetime.now(UTC)
            with transaction(app.state.session_factory) as session:
                due = due_rounds(session, now)
            for task_id, round_id in due:
                with transaction(app.state.session_factory) as session:
                    close_if_due(session, task_id, round_id, now)
        except Exception:  # a transient DB error must not kill the ticker
            log.exception("round ticker failed")


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    settings = settings or Settings()
    if settings.is_embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    if migrate:
        upgrade(engine)
    read_engine = make_read_engine(settings.db_url, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = threading.Thread(
            target=_ticker, args=(app, stop), name="round-ticker", daemon=True
        )
        thread.start()
        stop_ops = ops.start_background(app)  # webhook worker, log retention
        yield
        stop_ops()
        stop.set()
        thread.join(timeout=5)
        engine.dispose()
        read_engine.dispose()

    app = FastAPI(
        title="Lerna FL-API",
        version=__version__,
        description="Federated learning orchestration: rounds, aggregation, model versions.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.read_engine = read_engine
    app.state.session_factory = make_session_factory(engine)
    app.state.read_session_factory = make_session_factory(read_engine)
    app.state.jwt_secret = settings.resolved_jwt_secret()
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    install_handlers(app)
    # the device protocol first: a request is matched against the routers in order, and these
    # two carry nearly every request of a round (no path of theirs overlaps another router's)
    app.include_router(secure.router)
    app.include_router(device.router)
    ops.install(app, settings)  # middleware, /ready, /metrics, webhooks, remote config, logs
    app.include_router(auth.router)
    app.include_router(apps.router)
    two_server.install(app)  # masked uploads; the MPC link for every session
    app.include_router(recommendations.router)

    @app.get("/health", tags=["ops"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    if DASHBOARD_DIST.exists():
        mount_spa(app, DASHBOARD_DIST)
    return app
