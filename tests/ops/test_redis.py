"""With Redis: replicas share the cache (config changes seen at once) and rate-limit counters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lerna.server.cache import MemoryCache, RedisCache
from tests.ops.conftest import OpsClient, make_settings


@pytest.fixture
def two_replicas(
    database_url: str, tmp_path: Path, redis_url: str
) -> Iterator[tuple[OpsClient, OpsClient]]:
    import redis

    from lerna.server.app import create_app

    redis.Redis.from_url(redis_url).flushdb()
    key = "d" * 0  # both replicas need the same secrets key; generated once below
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    made = [
        create_app(
            make_settings(
                database_url,
                tmp_path / "data",
                redis_url=redis_url,
                secrets_key=key,
                rate_limit_device_per_minute=6,
            )
        )
        for _ in range(2)
    ]
    with TestClient(made[0]) as a, TestClient(made[1]) as b:
        yield OpsClient(a, made[0]), OpsClient(b, made[1])
    for app in made:
        app.state.engine.dispose()


def test_config_change_on_one_replica_is_seen_by_the_other(
    two_replicas: tuple[OpsClient, OpsClient],
) -> None:
    a, b = two_replicas
    headers, app, _ = a.setup_task()
    device = a.enroll(app["token"])
    assert b.http.get("/v1/device/remote-config", headers=device).json()["revision"] == 0  # cached
    a.http.put(
        f"/api/apps/{app['id']}/remote-config", json={"training_min_sessions": 1}, headers=headers
    )
    seen = b.http.get("/v1/device/remote-config", headers=device).json()
    assert seen["revision"] == 1 and seen["training_min_sessions"] == 1
    assert b.http.get("/ready").json()["checks"] == {"database": "ok", "redis": "ok"}


def test_rate_limit_is_shared_across_replicas_and_per_device(
    two_replicas: tuple[OpsClient, OpsClient],
) -> None:
    a, b = two_replicas
    _, app, _ = a.setup_task()
    device, other = a.enroll(app["token"]), a.enroll(app["token"])
    codes = [
        (a if i % 2 else b).http.get("/v1/device/remote-config", headers=device).status_code
        for i in range(8)
    ]
    assert codes == [200] * 6 + [429] * 2
    limited = a.http.get("/v1/device/remote-config", headers=device)
    assert limited.json()["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
    assert b.http.get("/v1/device/remote-config", headers=other).status_code == 200


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_cache_contract(kind: str, request: pytest.FixtureRequest) -> None:
    cache = (
        MemoryCache(max_bytes=1000)
        if kind == "memory"
        else RedisCache(request.getfixturevalue("redis_url"))
    )
    cache.set("a", b"1", ttl=60)
    assert cache.get("a") == b"1" and cache.get("missing") is None
    cache.delete("a")
    assert cache.get("a") is None
    cache.set("gone", b"x", ttl=0.001)
    time.sleep(0.01)
    assert cache.get("gone") is None
    assert [cache.incr(f"n-{kind}", ttl=60) for _ in range(3)] == [1, 2, 3]
    cache.close()


def test_memory_cache_is_bounded() -> None:
    cache = MemoryCache(max_bytes=1000)
    for i in range(20):
        cache.set(f"k{i}", bytes(200), ttl=60)
    kept = [i for i in range(20) if cache.get(f"k{i}") is not None]
    assert kept == list(range(15, 20))  # least recently used went first
