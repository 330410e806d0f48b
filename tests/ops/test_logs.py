"""SDK log storage: the endpoint (limits, opt-ins, tenancy) and the stores behind it."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from lerna.server.errors import NotFound
from lerna.server.services.logstore import (
    FileLogStore,
    LogStore,
    MemoryLogStore,
    S3LogStore,
    make_store,
    new_key,
)
from lerna.server.settings import Settings
from tests.ops.conftest import OpsClient


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server over HTTP on loopback (moto's server: there is no S3 here)."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["memory", "filesystem", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LogStore]:
    if request.param == "memory":
        yield MemoryLogStore()
    elif request.param == "filesystem":
        yield FileLogStore(tmp_path / "logs")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        for name, value in {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        bucket = f"logs-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        settings = Settings(
            log_storage="s3",
            log_s3_bucket=bucket,
            log_s3_endpoint_url=endpoint,
            data_dir=tmp_path,
            _env_file=None,
        )
        store = make_store(settings)
        assert isinstance(store, S3LogStore)
        yield store


def test_store_keeps_apps_apart_and_purges_old_days(store: LogStore) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=40)
    fresh = store.put(1, new_key("error", 5, now), b"boom")
    store.put(1, new_key("debug", 5, now), b"dbg")
    stale = store.put(1, new_key("error", 6, old), b"old")
    store.put(2, new_key("error", 9, now), b"other app")
    assert store.get(1, fresh.key) == b"boom" and fresh.device_id == 5
    assert [o.key for o in store.list(1, "error", 10)] == [fresh.key, stale.key]
    assert len(store.list(1, None, 10)) == 3 and len(store.list(1, None, 1)) == 1
    with pytest.raises(NotFound):
        store.get(2, fresh.key)
    for bad in ("../app-2/error/x.log", "error/2026-01-01/../../x", "/etc/passwd", "error/x"):
        with pytest.raises(NotFound):
            store.get(1, bad)
    assert store.purge_older_than(30) == 1
    assert [o.key for o in store.list(1, "error", 10)] == [fresh.key]
    assert store.list(2, None, 10)[0].size == len(b"other app")


def _upload(ops: OpsClient, device: dict[str, str], body: bytes, **params: object) -> object:
    return ops.http.post("/v1/device/logs", content=body, params=params, headers=device)


def test_device_uploads_error_log_and_customer_reads_it(ops: OpsClient) -> None:
    headers, app, _ = ops.setup_task()
    device = ops.enroll(app["token"])
    r = ops.http.post("/v1/device/logs", content=b"Traceback: boom\n", headers=device)
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    assert key.startswith("error/") and r.json()["size"] == 16
    listed = ops.http.get(f"/api/apps/{app['id']}/logs", headers=headers).json()
    assert [x["key"] for x in listed] == [key]
    got = ops.http.get(f"/api/apps/{app['id']}/logs/{key}", headers=headers)
    assert got.status_code == 200 and got.content == b"Traceback: boom\n"
    other = ops.signup()
    assert ops.http.get(f"/api/apps/{app['id']}/logs/{key}", headers=other).status_code == 404
    escape = ops.http.get(f"/api/apps/{app['id']}/logs/error/..%2F..%2Fjwt_secret", headers=headers)
    assert escape.status_code == 404


def test_limits_and_opt_ins(ops: OpsClient) -> None:
    headers, app, _ = ops.setup_task()
    device = ops.enroll(app["token"])
    limit = ops.app.state.settings.max_log_bytes
    big = ops.http.post("/v1/device/logs", content=b"x" * (limit + 1), headers=device)
    assert big.status_code == 413
    assert ops.http.post("/v1/device/logs", content=b"", headers=device).status_code == 422
    assert ops.http.post("/v1/device/logs", content=b"x").status_code == 401
    debug = {"kind": "debug", "user_opted_in": "true"}
    r = ops.http.post("/v1/device/logs", content=b"d", params=debug, headers=device)
    assert r.status_code == 403 and r.json()["code"] == "not_opted_in"  # the app did not opt in
    cfg = f"/api/apps/{app['id']}/remote-config"
    ops.http.put(cfg, json={"upload_debug_data": True, "upload_error_logs": False}, headers=headers)
    r = ops.http.post("/v1/device/logs", content=b"d", params={"kind": "debug"}, headers=device)
    assert r.status_code == 403  # the user did not opt in
    r = ops.http.post("/v1/device/logs", content=b"d", params=debug, headers=device)
    assert r.status_code == 201 and r.json()["key"].startswith("debug/")
    r = ops.http.post("/v1/device/logs", content=b"e", headers=device)
    assert r.status_code == 403 and r.json()["code"] == "log_upload_disabled"
    r = ops.http.post("/v1/device/logs", content=b"e", params={"kind": "core"}, headers=device)
    assert r.status_code == 422
    assert len(ops.http.get(f"/api/apps/{app['id']}/logs", headers=headers).json()) == 1
