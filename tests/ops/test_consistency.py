"""Read-your-writes across replicas: a write is committed before its response is sent.

FastAPI runs the exit code of a ``yield`` dependency after the response by default, which
would acknowledge a write (an enrollment, a new account) before it is committed: the next
request, on another replica, would not see it, and a commit that fails would still have
answered 2xx. The session dependency uses ``scope="function"``; this pins that down with a
commit slowed on purpose."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.helpers import ApiClient
from tests.ops.conftest import make_settings
from tests.ops.services import free_port


def test_acknowledged_write_is_visible_on_another_replica_at_once(
    database_url: str, tmp_path: Path
) -> None:
    from lerna.server.app import create_app

    key = "K" * 43 + "="
    settings = make_settings(database_url, tmp_path / "data", secrets_key=key)
    a, b = create_app(settings), create_app(settings, migrate=False)

    def slow_commit(session: Any) -> None:
        time.sleep(0.3)

    server = uvicorn.Server(
        uvicorn.Config(a, host="127.0.0.1", port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{server.config.port}"
    try:
        # a real server: TestClient would wait for the whole ASGI call, hiding the order
        with httpx.Client(base_url=url, timeout=10) as ca, TestClient(b) as cb:
            event.listen(a.state.session_factory, "before_commit", slow_commit)
            api_a = ApiClient(ca)
            headers = api_a.signup()
            created = ca.post("/api/apps", json={"name": "seen"}, headers=headers)
            assert created.status_code == 201
            seen = cb.get("/api/apps", headers=headers).json()
            assert [x["name"] for x in seen] == ["seen"]
            device = api_a.enroll(created.json()["token"])
            assert cb.get("/v1/device/remote-config", headers=device).status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)
    for app in (a, b):
        app.state.engine.dispose()
