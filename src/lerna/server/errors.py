"""Domain errors and their one mapping to HTTP.

Exception tree::

    LernaError                  (400 bad_request)
    +-- NotFound                (404 not_found)
    +-- Unauthorized            (401 unauthorized)
    +-- Forbidden               (403 forbidden)
    +-- Conflict                (409 conflict: stale version, closed round, replay, duplicate)
    +-- PayloadTooLarge         (413 payload_too_large)
    +-- Unprocessable           (422 invalid: well-formed but wrong content)

Every error body is ``{"code": ..., "message": ...}``; the code is stable, the message is for people.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("lerna.server")


class LernaError(Exception):
    status = 400
    default_code = "bad_request"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class NotFound(LernaError):
    status, default_code = 404, "not_found"


class Unauthorized(LernaError):
    status, default_code = 401, "unauthorized"


class Forbidden(LernaError):
    status, default_code = 403, "forbidden"


class Conflict(LernaError):
    status, default_code = 409, "conflict"


class PayloadTooLarge(LernaError):
    status, default_code = 413, "payload_too_large"


class Unprocessable(LernaError):
    status, default_code = 422, "invalid"


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(LernaError)
    async def _domain(_: Request, exc: LernaError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(
            {"code": exc.code, "message": exc.message}, status_code=exc.status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"code": "invalid", "message": _describe(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            exc.status_code, "error"
        )
        return JSONResponse({"code": code, "message": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            {"code": "internal", "message": "internal server error"}, status_code=500
        )
