"""Application factory of the recommendation service; it only assembles the parts.

``create_app(settings)`` is what ``lerna serve recommender`` and the embedded ``lerna serve`` mount;
``create_app_from_env`` is the zero-argument factory for ``uvicorn --factory``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.engine import make_url

from lerna.recommender.api import engines, entities, events, jobs, queries
from lerna.recommender.api.fastpath import QueryFastPath, error_body, invalid_input
from lerna.recommender.db import make_engine
from lerna.recommender.errors import RecommenderError
from lerna.recommender.jobs import JobManager
from lerna.recommender.service import RecommenderService
from lerna.recommender.settings import RecommenderSettings
from lerna.recommender.store import RecommenderStore

__all__ = ["RecommenderSettings", "create_app", "create_app_from_env"]


def _error(status: int, body: bytes) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def _ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def create_app(settings: RecommenderSettings) -> FastAPI:
    _ensure_sqlite_dir(settings.database_url)
    db = make_engine(settings.database_url)
    service = RecommenderService(RecommenderStore(db), settings.history_cache_size)
    job_manager = JobManager(service, settings.train_workers)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        job_manager.shutdown()
        db.dispose()

    app = FastAPI(
        title="Lerna recommendation service",
        description="Harness-compatible Universal Recommender (CCO) in one process.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.jobs = job_manager

    @app.exception_handler(RecommenderError)
    async def _domain_error(_: Request, exc: RecommenderError) -> Response:
        return _error(exc.status_code, error_body(exc.code, str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> Response:
        return _error(400, invalid_input(list(exc.errors())))

    @app.get("/", tags=["health"])
    def alive() -> dict[str, str]:
        return {"status": "OK"}

    # queries first: Starlette tries routes in order, and they are most of the traffic
    for module in (queries, events, engines, jobs, entities):
        app.include_router(module.router)
    app.add_middleware(QueryFastPath)
    return app


def create_app_from_env() -> FastAPI:
    """For ``uvicorn --factory lerna.recommender.app:create_app_from_env``."""
    return create_app(RecommenderSettings())
