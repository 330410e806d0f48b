"""The production shape on loopback: PostgreSQL, Redis, two FL-API replicas, the MPC service
and the recommender behind nginx with TLS and HTTP/2. A fleet trains through nginx over HTTPS
for several rounds; one replica is SIGKILLed in the middle of a round, and every upload the
fleet saw acknowledged is counted exactly once (checked on the published weights)."""

from __future__ import annotations

import importlib.util
import socket
import ssl
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from cryptography.fernet import Fernet

from tests.helpers import ApiClient, update_like
from tests.ops.services import Process, free_port, redis_server, require, self_signed_cert
from tests.pgserver import new_database

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://dashboard.example.com"


def _render() -> Any:
    spec = importlib.util.spec_from_file_location(
        "render_nginx", ROOT / "deploy" / "render_nginx.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Stack:
    url: str
    cert: Path
    replicas: list[Process]
    https_port: int


@pytest.fixture(scope="module")
def stack(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    nginx = require("nginx", "nginx")
    tmp = tmp_path_factory.mktemp("stack")
    cert, key = self_signed_cert(tmp)
    started: list[Process] = []
    with redis_server() as redis_url:
        try:
            base = {
                "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
                "LERNA_ENV_FILE": str(tmp / "none.env"),
                "LERNA_DATABASE_URL": new_database(postgres_url),
                "LERNA_REDIS_URL": redis_url,
                "LERNA_JWT_SECRET": uuid.uuid4().hex * 2,
                "LERNA_SECRETS_KEY": Fernet.generate_key().decode(),
                "LERNA_TICK_SECONDS": "0.5",
            }
            cli = [sys.executable, "-m", "lerna.cli", "serve"]
            replicas = []
            for i in range(2):  # one after the other: the first applies the migrations
                port = free_port()
                env = {**base, "LERNA_DATA_DIR": str(tmp / f"fl{i}")}
                proc = Process(
                    f"fl-api-{i}",
                    [*cli, "fl-api", "--port", str(port)],
                    env,
                    port,
                    tmp / f"fl{i}.log",
                )
                started.append(proc.start())
                replicas.append(proc)
            mpc_port, rec_port = free_port(), free_port()
            mpc_env = {**base, "LERNA_MPC_DEMO": "1", "LERNA_MPC_DATA_DIR": str(tmp / "mpc")}
            started.append(
                Process(
                    "mpc",
                    [*cli, "mpc", "--port", str(mpc_port)],
                    mpc_env,
                    mpc_port,
                    tmp / "mpc.log",
                ).start()
            )
            rec_env = {**base, "LERNA_DATA_DIR": str(tmp / "rec")}
            started.append(
                Process(
                    "recommender",
                    [*cli, "recommender", "--port", str(rec_port)],
                    rec_env,
                    rec_port,
                    tmp / "rec.log",
                ).start()
            )
            render = _render()
            https_port = free_port()
            site = render.render_site(
                fl_api=[f"127.0.0.1:{p.port}" for p in replicas],
                mpc=f"127.0.0.1:{mpc_port}",
                recommender=f"127.0.0.1:{rec_port}",
                cert=str(cert),
                key=str(key),
                https_listen=f"127.0.0.1:{https_port}",
                http_listen=f"127.0.0.1:{free_port()}",
                cors_origins=[ORIGIN],
                max_upload="4m",
            )
            prefix = tmp / "nginx"
            prefix.mkdir()
            (prefix / "nginx.conf").write_text(render.render_standalone(site, prefix))
            started.append(
                Process(
                    "nginx",
                    [nginx, "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
                    base,
                    https_port,
                    tmp / "nginx.out",
                ).start()
            )
            yield Stack(f"https://127.0.0.1:{https_port}", cert, replicas, https_port)
        finally:
            for proc in reversed(started):
                proc.stop()


def _client(stack: Stack) -> httpx.Client:
    return httpx.Client(
        base_url=stack.url, verify=ssl.create_default_context(cafile=str(stack.cert)), timeout=30
    )


def test_nginx_front_tls_http2_cors_health_and_limits(stack: Stack) -> None:
    with _client(stack) as http:
        for path in ("/health", "/health/fl-api", "/health/mpc", "/health/recommender", "/ready"):
            assert http.get(path).status_code == 200, path
        assert http.get("/ready").json()["checks"] == {"database": "ok", "redis": "ok"}
        pre = http.options(
            "/api/apps", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
        )
        assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in pre.headers["access-control-allow-methods"]
        evil = http.options("/api/apps", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in evil.headers
        big = http.post(
            "/v1/device/logs", content=b"x" * (2 << 20), headers={"Authorization": "Bearer x"}
        )
        assert big.status_code == 413  # refused by nginx before any replica reads it
        assert http.get("/health/fl-api").headers.get("x-request-id")  # nginx's id, echoed
    ctx = ssl.create_default_context(cafile=str(stack.cert))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", stack.https_port)) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


@dataclass(frozen=True)
class Upload:
    device: dict[str, str]
    round_id: int
    base_version: int
    update: dict[str, np.ndarray]
    num_examples: int
    upload_id: str


def _send_until_answered(api: ApiClient, job: Upload) -> bool:
    """Send one upload like the SDK does: retry on gateway errors and broken connections with
    the same upload id; True when the server acknowledged it (now or on an earlier try)."""
    for _ in range(8):
        try:
            r = api.upload(
                job.device,
                job.round_id,
                job.update,
                num_examples=job.num_examples,
                upload_id=job.upload_id,
                base_version=job.base_version,
            )
        except httpx.TransportError:
            time.sleep(0.25)
            continue
        if r.status_code == 200:
            return True
        if r.status_code == 409 and r.json()["code"] == "already_uploaded":
            return True
        if r.status_code in (502, 503, 504):
            time.sleep(0.25)
            continue
        raise AssertionError(f"upload refused: {r.status_code} {r.text}")
    return False


def test_fleet_over_https_survives_sigkill_of_a_replica_mid_round(stack: Stack) -> None:
    rounds, cohort = 4, 8
    with _client(stack) as http:
        api = ApiClient(http)
        headers, app, task = api.setup_task(
            cohort_size=cohort, min_participants=cohort, upload_seconds=600
        )
        fleet = [api.enroll(app["token"]) for _ in range(cohort)]
        killed: Process | None = None
        for r in range(1, rounds + 1):
            _, base = api.model(fleet[0], task["id"])
            assignments = [api.checkin(d, task["id"]) for d in fleet]
            assert all(a["action"] == "train" for a in assignments), assignments
            rid, version = assignments[0]["round_id"], assignments[0]["base_version"]
            values = [float(r * 10 + i) for i in range(cohort)]
            weights = [i + 1 for i in range(cohort)]
            jobs = [
                Upload(
                    fleet[i],
                    rid,
                    version,
                    update_like(base, values[i]),
                    weights[i],
                    f"upload-r{r}-d{i}",
                )
                for i in range(cohort)
            ]
            half = cohort // 2
            with ThreadPoolExecutor(4) as pool:
                acknowledged = list(pool.map(partial(_send_until_answered, api), jobs[:half]))
                rest = [pool.submit(_send_until_answered, api, job) for job in jobs[half:]]
                if r == 2:  # the middle of a round: half acknowledged, the rest in flight
                    killed = stack.replicas[0]
                    killed.kill()
                acknowledged += [f.result() for f in rest]
            assert all(acknowledged), f"round {r}: some uploads were never acknowledged"
            versions = http.get(
                f"/api/apps/{app['id']}/tasks/{task['id']}/versions", headers=headers
            ).json()
            published = {v["version"]: v for v in versions}
            assert r in published, f"round {r} did not publish a version"
            assert published[r]["participants"] == cohort and published[r]["num_examples"] == sum(
                weights
            )
            manifest, new = api.model(fleet[0], task["id"])
            assert manifest.version == r
            expected = np.dot(weights, values) / sum(weights)  # a double count would move this
            for name in base:
                np.testing.assert_allclose(new[name], base[name] + expected, rtol=1e-6, atol=1e-6)
            if r == 2 and killed is not None:
                killed.start()  # the replica comes back and rejoins the rotation
        metrics = http.get("/metrics").text
        assert 'lerna_rounds_total{state="completed"} 4.0' in metrics
