"""Shared fixtures: a throwaway PostgreSQL server started from the Debian binaries, and the
FL-API on SQLite and on PostgreSQL (tests that take ``api`` run on both)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ApiClient


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; CI runs as root, so drop to the postgres user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    bindir = _pg_bindir()
    if bindir is None:
        if os.environ.get("CI") or os.environ.get("LERNA_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL binaries not found under /usr/lib/postgresql (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="lerna-pg-"))
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    data = tmp / "data"
    port = _free_port()
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200"
    subprocess.run(
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(tmp / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def new_postgres_database(server_url: str) -> str:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


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

    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, jwt_secret="x" * 40, tick_seconds=0.2, _env_file=None)
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
