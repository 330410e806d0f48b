"""The credential-to-device lookup is served from the cache, and a device change (blacklist,
re-enrollment) is refused at once, on the same process and, through Redis, on every replica.
Both cache implementations keep the same contract (one suite, run against both)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event

from lerna.server.cache import Cache, MemoryCache, RedisCache
from lerna.server.services import devices
from tests.ops.conftest import OpsClient, make_settings


def _wire(app: FastAPI) -> None:
    """What the app factory does for a deployment (``devices.use_cache``)."""
    settings = app.state.settings
    devices.use_cache(app.state.engine, app.state.cache, settings.device_cache_seconds)


def _device_lookups(app: FastAPI) -> list[str]:
    """Every SQL statement that reads a device by credential, from now on."""
    seen: list[str] = []

    def record(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if "FROM devices" in statement and "credential_hash" in statement:
            seen.append(statement)

    event.listen(app.state.engine, "before_cursor_execute", record)
    return seen


def _blacklist(api: OpsClient, headers: dict[str, str], app_id: int, device_id: int) -> None:
    r = api.http.put(
        f"/api/apps/{app_id}/devices/{device_id}/blacklist",
        json={"block_training": True, "block_predictions": False},
        headers=headers,
    )
    assert r.status_code == 200, r.text


def _enroll(api: OpsClient, token: str, uid: str) -> tuple[dict[str, str], int]:
    r = api.http.post(
        "/v1/devices/enroll", json={"device_uid": uid}, headers={"X-App-Token": token}
    )
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['credential']}"}, int(r.json()["device_id"])


@pytest.fixture
def cached(ops: OpsClient) -> OpsClient:
    _wire(ops.app)
    return ops


def test_lookups_are_cached_and_a_blacklist_is_refused_at_once(cached: OpsClient) -> None:
    headers, app, task = cached.setup_task()
    device, device_id = _enroll(cached, app["token"], "phone-1")
    assert cached.http.get("/v1/device/config", headers=device).status_code == 200  # fills
    lookups = _device_lookups(cached.app)
    for _ in range(3):
        assert cached.http.get("/v1/device/config", headers=device).json()["training_enabled"]
    assert cached.checkin(device, task["id"])["action"] in ("train", "wait")
    assert lookups == [], "a cached device should need no credential query"

    _blacklist(cached, headers, app["id"], device_id)
    r = cached.http.post(f"/v1/device/tasks/{task['id']}/checkin", headers=device)
    assert r.status_code == 403 and r.json()["code"] == "device_blacklisted"
    assert cached.http.get("/v1/device/config", headers=device).json() == {
        "training_enabled": False,
        "predictions_enabled": True,
    }


def test_re_enrollment_revokes_the_old_credential_at_once(cached: OpsClient) -> None:
    _, app, _ = cached.setup_task()
    old, _ = _enroll(cached, app["token"], "phone-2")
    assert cached.http.get("/v1/device/config", headers=old).status_code == 200
    assert cached.http.get("/v1/device/config", headers=old).status_code == 200  # from cache
    new, _ = _enroll(cached, app["token"], "phone-2")  # reinstall: a fresh credential
    r = cached.http.get("/v1/device/config", headers=old)
    assert r.status_code == 401 and r.json()["code"] == "bad_credential"
    assert cached.http.get("/v1/device/config", headers=new).status_code == 200


def test_deleting_the_app_drops_its_devices(cached: OpsClient) -> None:
    headers, app, _ = cached.setup_task()
    device, _ = _enroll(cached, app["token"], "phone-3")
    assert cached.http.get("/v1/device/config", headers=device).status_code == 200
    assert cached.http.delete(f"/api/apps/{app['id']}", headers=headers).status_code == 204
    assert cached.http.get("/v1/device/config", headers=device).status_code == 401


@pytest.fixture
def two_replicas(
    database_url: str, tmp_path: Path, redis_url: str
) -> Iterator[tuple[OpsClient, OpsClient]]:
    import redis

    from lerna.server.app import create_app

    redis.Redis.from_url(redis_url).flushdb()
    key = Fernet.generate_key().decode()
    made = [
        create_app(
            make_settings(database_url, tmp_path / "data", redis_url=redis_url, secrets_key=key)
        )
        for _ in range(2)
    ]
    for app in made:
        _wire(app)
    with TestClient(made[0]) as a, TestClient(made[1]) as b:
        yield OpsClient(a, made[0]), OpsClient(b, made[1])
    for app in made:
        app.state.engine.dispose()


def test_a_blacklist_on_one_replica_is_refused_at_once_on_the_other(
    two_replicas: tuple[OpsClient, OpsClient],
) -> None:
    a, b = two_replicas
    headers, app, task = a.setup_task()
    device, device_id = _enroll(a, app["token"], "phone-4")
    assert a.checkin(device, task["id"])["action"] in ("train", "wait")  # A fills Redis
    lookups = _device_lookups(b.app)
    assert b.http.get("/v1/device/config", headers=device).status_code == 200
    assert lookups == [], "B should find the device A cached in Redis"

    _blacklist(b, headers, app["id"], device_id)  # through B
    r = a.http.post(f"/v1/device/tasks/{task['id']}/checkin", headers=device)
    assert r.status_code == 403 and r.json()["code"] == "device_blacklisted"

    new, _ = _enroll(b, app["token"], "phone-4")  # re-enrollment through B: old key revoked
    assert a.http.get("/v1/device/config", headers=device).status_code == 401
    assert a.http.get("/v1/device/config", headers=new).status_code == 200


@pytest.fixture(params=["memory", "redis"])
def any_cache(request: pytest.FixtureRequest) -> Iterator[Cache]:
    if request.param == "memory":
        yield MemoryCache()
        return
    made = RedisCache(request.getfixturevalue("redis_url"))
    yield made
    made.close()


def test_add_never_overwrites_and_respects_expiry(any_cache: Cache) -> None:
    """The contract the invalidation marker rests on: a fill (``add``) loses to a marker."""
    key = f"test:{uuid.uuid4().hex}"
    assert any_cache.add(key, b"old row", 10.0) is True
    assert any_cache.add(key, b"other", 10.0) is False
    assert any_cache.get(key) == b"old row"
    any_cache.set(key, b"-", 0.2)  # a writer's marker
    assert any_cache.add(key, b"old row", 10.0) is False and any_cache.get(key) == b"-"
    time.sleep(0.3)
    assert any_cache.get(key) is None
    assert any_cache.add(key, b"new row", 10.0) is True and any_cache.get(key) == b"new row"
    any_cache.delete(key)
    assert any_cache.get(key) is None


def test_ttl_zero_turns_the_cache_off_and_memory_entries_are_short(ops: OpsClient) -> None:
    devices.use_cache(ops.app.state.engine, MemoryCache(), 3600)
    assert devices._lookups[ops.app.state.engine][1] == devices.LOCAL_TTL
    devices.use_cache(ops.app.state.engine, MemoryCache(), 0)
    assert ops.app.state.engine not in devices._lookups
