"""Bearer-token roles: ``admin`` may do everything, ``client`` may send events and queries to
the engines its token lists (``"*"`` for all). With no token configured auth is off, which
``check_bind_allowed`` permits only on loopback.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from lerna.recommender.errors import AuthError, ForbiddenError
from lerna.recommender.settings import RecommenderSettings


@dataclass(frozen=True)
class Principal:
    role: str  # "admin", "client" or "open" (auth off)
    engines: tuple[str, ...] = ()

    def require_admin(self) -> None:
        if self.role not in ("admin", "open"):
            raise ForbiddenError("this operation needs an admin token")

    def require_engine(self, engine_id: str) -> None:
        if self.role in ("admin", "open"):
            return
        if "*" not in self.engines and engine_id not in self.engines:
            raise ForbiddenError(f"this token may not use engine {engine_id!r}")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def authenticate(settings: RecommenderSettings, authorization: str | None) -> Principal:
    """Resolve an ``Authorization`` header; every configured token is compared, in constant time."""
    if not settings.auth_enabled:
        return Principal("open")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthError("send 'Authorization: Bearer <token>'")
    found: Principal | None = None
    for admin in settings.admin_tokens:
        if _same(admin, token):
            found = Principal("admin")
    for client, engines in settings.client_tokens.items():
        if _same(client, token) and found is None:
            found = Principal("client", tuple(engines))
    if found is None:
        raise AuthError("unknown token")
    return found
