"""Assembles the MPC service: settings, its own database (migrated at start), routers, one error
handler."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import sessionmaker

from lerna.mpc.db import make_engine
from lerna.mpc.errors import MPCError
from lerna.mpc.migrate import upgrade
from lerna.mpc.routers import gateway, rounds
from lerna.mpc.service import MaskService
from lerna.mpc.settings import MPCSettings


def create_app(settings: MPCSettings | None = None) -> FastAPI:
    settings = settings or MPCSettings()
    if settings.db_url.startswith("sqlite:///") and settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    upgrade(engine)
    app = FastAPI(title="Lerna MPC service", version="1")
    app.state.settings = settings
    app.state.engine = engine
    app.state.mask_service = MaskService(settings, sessionmaker(engine, expire_on_commit=False))

    @app.exception_handler(MPCError)
    async def _mpc_error(_request: Request, exc: MPCError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(
            status_code=exc.status_code,
            content={"code": exc.code, "detail": exc.detail},
            headers=headers,
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(gateway.router)
    app.include_router(rounds.router)
    return app
