"""Dependency aliases, so a route body reads like the rule it implements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from lerna.server.errors import Unauthorized
from lerna.server.models import App, Customer, Device
from lerna.server.security import decode_access_token
from lerna.server.services import accounts, apps, devices
from lerna.server.settings import Settings

bearer = HTTPBearer(auto_error=False)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """A session inside one transaction: committed when the route returns, rolled back on error."""
    with request.app.state.session_factory() as session, session.begin():
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": commit before the response is sent, so an acknowledged write is durable
# and visible to the next request on any replica (the default runs the commit afterwards)
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
# for routes that read the credential themselves (``bodies.with_device``): documents the scheme
# in OpenAPI; ``bearer`` is async, so it costs no worker-thread hop
BEARER = [Security(bearer)]


def current_customer(request: Request, session: SessionDep, creds: BearerDep) -> Customer:
    if creds is None:
        raise Unauthorized("log in first (missing bearer token)", "not_authenticated")
    customer_id = decode_access_token(creds.credentials, request.app.state.jwt_secret)
    if customer_id is None:
        raise Unauthorized("session expired or invalid; log in again", "bad_token")
    return accounts.get(session, customer_id)


CurrentCustomer = Annotated[Customer, Depends(current_customer)]


def current_device(session: SessionDep, creds: BearerDep) -> Device:
    return devices.authenticate(session, creds.credentials if creds else None)


CurrentDevice = Annotated[Device, Depends(current_device)]


def app_from_token(session: SessionDep, x_app_token: Annotated[str | None, Header()] = None) -> App:
    return apps.by_token(session, x_app_token)


TokenApp = Annotated[App, Depends(app_from_token)]


def owned_app(app_id: int, session: SessionDep, customer: CurrentCustomer) -> App:
    return apps.get_owned(session, customer.id, app_id)


OwnedApp = Annotated[App, Depends(owned_app)]
