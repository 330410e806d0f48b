"""A server SIGKILLed mid-round and restarted continues the round: every acknowledged upload
is still counted, none twice. Real processes, real sockets, SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers import ApiClient, update_like
from tests.pgserver import free_port as _free_port


class ServerProcess:
    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.port = _free_port()
        self.env = {
            **os.environ,
            "LERNA_DATABASE_URL": database_url,
            "LERNA_DATA_DIR": str(data_dir),
            "LERNA_JWT_SECRET": "k" * 48,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lerna.cli", "serve", "fl-api", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
            if self.proc.poll() is not None:
                raise RuntimeError(
                    self.proc.stderr.read().decode() if self.proc.stderr else "server exited"
                )
        raise RuntimeError("server did not become healthy")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(database_url, tmp_path / "data")
    proc.start()
    yield proc
    proc.stop()


def test_sigkill_mid_round_loses_no_acknowledged_upload(server: ServerProcess) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as http:
        api = ApiClient(http)
        headers, app, task = api.setup_task(cohort_size=4, min_participants=4, upload_seconds=600)
        devices = [api.enroll(app["token"]) for _ in range(4)]
        _, base = api.model(devices[0], task["id"])
        assignments = [api.checkin(d, task["id"]) for d in devices]
        rid = assignments[0]["round_id"]
        values = [1.0, 2.0, 3.0, 6.0]
        first = api.upload(
            devices[0], rid, update_like(base, values[0]), num_examples=1, upload_id="upload-dev-0"
        )
        second = api.upload(
            devices[1], rid, update_like(base, values[1]), num_examples=1, upload_id="upload-dev-1"
        )
        assert first.status_code == second.status_code == 200

    server.kill()
    server.start()

    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as http:
        api = ApiClient(http)
        # device 1 never saw its acknowledgement and sends the same upload again
        again = api.upload(
            devices[1], rid, update_like(base, values[1]), num_examples=1, upload_id="upload-dev-1"
        )
        assert again.status_code == 409 and again.json()["code"] == "already_uploaded"
        for i in (2, 3):
            r = api.upload(devices[i], rid, update_like(base, values[i]), num_examples=1)
            assert r.status_code == 200, r.text
        manifest, new = api.model(devices[0], task["id"])
        assert manifest.version == 1
        for name in base:
            np.testing.assert_allclose(new[name], base[name] + np.mean(values), rtol=1e-6)
        versions = http.get(
            f"/api/apps/{app['id']}/tasks/{task['id']}/versions", headers=headers
        ).json()
        assert versions[1]["participants"] == 4 and versions[1]["num_examples"] == 4
