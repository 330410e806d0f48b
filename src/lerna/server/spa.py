"""Serving the dashboard's built files from the FL-API, so one ``lerna serve`` gives API and UI.

The dashboard routes in the browser (history mode), so a reload of ``/apps/3/models`` must answer
with ``index.html``. A catch-all *route* would do that, but routes match in order and parts mounted
after ``create_app`` (``/recommender`` in ``lerna serve all``) would be shadowed. So this is an ASGI
middleware that answers only when no route of the application matches and the path is not under
an API prefix: API paths keep their JSON 404s, and anything mounted later still wins.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

#: Never answered with the SPA, even when nothing matches: clients of these expect JSON or 404.
RESERVED_PREFIXES = (
    "/api",
    "/v1",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/health",
    "/recommender",
    "/metrics",
    "/mpc",
)


def _reserved(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in RESERVED_PREFIXES)


class SpaFallback:
    """Serve ``dist``'s files, and ``index.html`` for any other page path, behind the app's routes."""

    def __init__(self, app: ASGIApp, *, owner: FastAPI, dist: Path) -> None:
        self.app = app
        self.owner = owner
        self.dist = dist.resolve()
        self.index = self.dist / "index.html"

    def _routed(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] != Match.NONE for route in self.owner.router.routes)

    def _file(self, path: str) -> Path | None:
        """The built file at ``path``, refusing anything that escapes ``dist`` (``..``, symlinks)."""
        candidate = (self.dist / path.lstrip("/")).resolve()
        if candidate.is_relative_to(self.dist) and candidate.is_file():
            return candidate
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope.get("method") not in ("GET", "HEAD")
            or _reserved(path)
            or self._routed(scope)
        ):
            await self.app(scope, receive, send)
            return
        response: Response
        found = self._file(path) if path not in ("", "/") else None
        if found is not None:
            # Vite fingerprints everything under assets/, so those can be cached for good.
            immutable = found.parent.name == "assets"
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            response = FileResponse(found, headers={"Cache-Control": cache})
        elif Path(path).suffix and not path.endswith(".html"):
            # A missing asset (a stale tab after a deploy) must not turn into HTML.
            response = Response("not found", status_code=404, media_type="text/plain")
        else:
            response = FileResponse(self.index, headers={"Cache-Control": "no-cache"})
        await response(scope, receive, send)


def mount_spa(app: FastAPI, dist: Path) -> None:
    """Serve the built dashboard in ``dist`` at ``/`` with history-mode fallback to index.html."""
    if not (dist / "index.html").is_file():
        raise FileNotFoundError(f"{dist} has no index.html; build it with scripts/dashboard.sh")
    app.add_middleware(SpaFallback, owner=app, dist=dist)


#: Where ``scripts/dashboard.sh`` builds the dashboard (inside the package, gitignored).
DASHBOARD_DIST = Path(__file__).parent / "static" / "dashboard"
