"""Customer accounts: register, authenticate, profile."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lerna.server.errors import Conflict, NotFound, Unauthorized
from lerna.server.models import Customer
from lerna.server.schemas import CustomerCreate, CustomerUpdate
from lerna.server.security import hash_password, verify_password


def register(session: Session, data: CustomerCreate) -> Customer:
    email = data.email.lower()
    if session.scalar(select(Customer.id).where(Customer.email == email)) is not None:
        raise Conflict("an account with this e-mail already exists", "email_taken")
    customer = Customer(
        email=email,
        password_hash=hash_password(data.password),
        name=data.name,
        company=data.company,
        position=data.position,
    )
    session.add(customer)
    session.flush()
    return customer


def authenticate(session: Session, email: str, password: str) -> Customer:
    customer = session.scalar(select(Customer).where(Customer.email == email.lower()))
    if (
        not verify_password(password, customer.password_hash if customer else None)
        or customer is None
    ):
        raise Unauthorized("wrong e-mail or password", "bad_credentials")
    return customer


def get(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("account not found")
    return customer


def update(session: Session, customer: Customer, data: CustomerUpdate) -> Customer:
    for key, value in data.model_dump(exclude_none=True).items():
        setattr(customer, key, value)
    return customer


def change_password(customer: Customer, current: str, new: str) -> None:
    if not verify_password(current, customer.password_hash):
        raise Unauthorized("the current password is wrong", "bad_credentials")
    customer.password_hash = hash_password(new)
