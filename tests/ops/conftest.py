"""Fixtures for operations tests: the FL-API with fast webhook retries (SQLite and PostgreSQL),
and a real HTTP receiver in a thread that fails its first N requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.helpers import ApiClient


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers 503 to the first ``fail_first`` requests, then 200; records every request."""

    fail_first: int = 0
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.arrived:
                state.requests.append(Received(self.path, dict(self.headers.items()), body))
                failing = len(state.requests) <= state.fail_first
                state.arrived.notify_all()
            self.send_response(503 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Any:
    from lerna.server.settings import Settings

    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "jwt_secret": "x" * 40,
        "tick_seconds": 0.2,
        "webhook_allow_http": True,
        "webhook_allow_private": True,  # the receiver listens on loopback (see test_webhook_ssrf)
        "webhook_backoff_seconds": 0.05,
        "webhook_timeout_seconds": 2.0,
        "worker_poll_seconds": 0.05,
        "log_format": "json",
        **overrides,
    }
    if not database_url.startswith("sqlite") and "secrets_key" not in overrides:
        from cryptography.fernet import Fernet

        values["secrets_key"] = Fernet.generate_key().decode()
    return Settings(_env_file=None, **values)


class OpsClient(ApiClient):
    def __init__(self, http: TestClient, app: FastAPI) -> None:
        super().__init__(http)
        self.app = app


@pytest.fixture
def ops(database_url: str, tmp_path: Path) -> Iterator[OpsClient]:
    from lerna.server.app import create_app

    app = create_app(make_settings(database_url, tmp_path / "data"))
    with TestClient(app) as client:
        yield OpsClient(client, app)
    app.state.engine.dispose()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    from tests.ops.services import redis_server

    with redis_server() as url:
        yield url
