"""Customer accounts: sign up, log in, profile."""

from __future__ import annotations

from fastapi import APIRouter, Request

from lerna.server.deps import CurrentCustomer, SessionDep, SettingsDep
from lerna.server.schemas import (
    CustomerCreate,
    CustomerPublic,
    CustomerUpdate,
    Login,
    PasswordChange,
    TokenPublic,
)
from lerna.server.security import create_access_token
from lerna.server.services import accounts

router = APIRouter(prefix="/api", tags=["accounts"])


@router.post("/auth/register", response_model=CustomerPublic, status_code=201)
def register(data: CustomerCreate, session: SessionDep) -> CustomerPublic:
    return CustomerPublic.model_validate(accounts.register(session, data))


@router.post("/auth/login", response_model=TokenPublic)
def login(data: Login, session: SessionDep, settings: SettingsDep, request: Request) -> TokenPublic:
    customer = accounts.authenticate(session, data.email, data.password)
    token = create_access_token(customer.id, request.app.state.jwt_secret, settings.jwt_minutes)
    return TokenPublic(access_token=token, expires_in=settings.jwt_minutes * 60)


@router.get("/me", response_model=CustomerPublic)
def me(customer: CurrentCustomer) -> CustomerPublic:
    return CustomerPublic.model_validate(customer)


@router.patch("/me", response_model=CustomerPublic)
def update_me(
    data: CustomerUpdate, customer: CurrentCustomer, session: SessionDep
) -> CustomerPublic:
    return CustomerPublic.model_validate(accounts.update(session, customer, data))


@router.post("/me/password", status_code=204)
def change_password(data: PasswordChange, customer: CurrentCustomer) -> None:
    accounts.change_password(customer, data.current_password, data.new_password)
