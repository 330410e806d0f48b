"""Apps and their tokens. Every lookup is scoped to the owning customer: another
customer's app is indistinguishable from one that does not exist (404)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lerna.server.errors import NotFound, Unauthorized
from lerna.server.models import App
from lerna.server.security import new_token, token_hash


def create(session: Session, customer_id: int, name: str) -> tuple[App, str]:
    token = new_token("app")
    app = App(
        customer_id=customer_id, name=name, token_hash=token_hash(token), token_prefix=token[:10]
    )
    session.add(app)
    session.flush()
    return app, token


def list_owned(session: Session, customer_id: int) -> list[App]:
    return list(session.scalars(select(App).where(App.customer_id == customer_id).order_by(App.id)))


def get_owned(session: Session, customer_id: int, app_id: int) -> App:
    app = session.get(App, app_id)
    if app is None or app.customer_id != customer_id:
        raise NotFound(f"app {app_id} not found")
    return app


def rotate_token(app: App) -> str:
    token = new_token("app")
    app.token_hash, app.token_prefix = token_hash(token), token[:10]
    return token


def by_token(session: Session, token: str | None) -> App:
    if not token:
        raise Unauthorized("missing app token (X-App-Token header)", "missing_app_token")
    app = session.scalar(select(App).where(App.token_hash == token_hash(token)))
    if app is None:
        raise Unauthorized("unknown app token", "bad_app_token")
    return app
