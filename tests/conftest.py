"""Shared fixtures: a throwaway PostgreSQL server started from the Debian binaries, and the
FL-API on SQLite and on PostgreSQL (tests that take ``api`` run on both)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pgserver
from tests.helpers import ApiClient
from tests.pgserver import new_database as new_postgres_database


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if pgserver.bindir() is None:
        if os.environ.get("CI") or os.environ.get("LERNA_REQUIRE_POSTGRES"):
            pytest.fail(
                "PostgreSQL binaries not found under /usr/lib/postgresql (apt-get install postgresql)"
            )
        pytest.skip("PostgreSQL is not installed")
    with pgserver.throwaway_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lerna.db'}"
    return new_postgres_database(request.getfixturevalue("postgres_url"))


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[ApiClient]:
    from fastapi.testclient import TestClient

    from lerna.server.app import create_app
    from lerna.server.settings import Settings

    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        jwt_secret="x" * 40,
        tick_seconds=0.2,
        _env_file=None,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        yield ApiClient(client)
    app.state.engine.dispose()


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """argon2 at production cost takes ~0.3 s a hash on 2 busy cores; tests use a cheap profile."""
    from argon2 import PasswordHasher

    from lerna.server import security

    original = security._hasher
    security._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    security._DUMMY_HASH = security._hasher.hash("lerna-dummy-password-for-timing")
    yield
    security._hasher = original
