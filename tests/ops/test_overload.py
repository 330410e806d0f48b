"""Overload turns into queueing, never into a deadlock.

Without admission control, ~80 simultaneous device requests on one replica exhaust the
database pool while holding it across worker-thread hops: every worker thread waits for a
connection that only a request waiting for a worker thread can return, until the pool's 30 s
timeout answers 500 (see ``ConcurrencyLimitMiddleware``). A real server and real sockets,
because the in-process test client does not run requests concurrently."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import uvicorn

from tests.helpers import ApiClient
from tests.ops.conftest import make_settings
from tests.ops.services import free_port

DEVICES = 80


def test_a_burst_of_checkins_is_served_without_pool_timeouts(
    database_url: str, tmp_path: Path
) -> None:
    from lerna.server.app import create_app

    app = create_app(make_settings(database_url, tmp_path / "data"))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    limits = httpx.Limits(max_connections=DEVICES)
    url = f"http://127.0.0.1:{server.config.port}"
    try:
        with httpx.Client(base_url=url, timeout=25, limits=limits) as http:
            api = ApiClient(http)
            _, created, task = api.setup_task(cohort_size=DEVICES, min_participants=2)
            devices = [api.enroll(created["token"]) for _ in range(DEVICES)]
            start = time.monotonic()

            def checkin(device: dict[str, str]) -> int:
                path = f"/v1/device/tasks/{task['id']}/checkin"
                return http.post(path, headers=device).status_code

            with ThreadPoolExecutor(DEVICES) as pool:
                codes = list(pool.map(checkin, devices))
            took = time.monotonic() - start
    finally:
        server.should_exit = True
        thread.join(15)
        app.state.engine.dispose()
    assert codes == [200] * DEVICES
    assert took < 20, f"{DEVICES} check-ins took {took:.1f} s"
