"""With Redis: replicas share the cache (config changes seen at once) and rate-limit counters."""

from __future__ import annotations

import contextlib
import socket
import threading
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


class _SilentRedis:
    """A TCP server that accepts connections and reads, but never answers: every Redis call
    waits out its client timeout. Once armed, `connected` is set when a client sends its first
    command and `gave_up` when that client closes the connection (its timeout)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.armed, self.connected, self.gave_up = (threading.Event() for _ in range(3))
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        watched = False
        with conn, contextlib.suppress(OSError):
            while conn.recv(65536):
                if self.armed.is_set() and not self.connected.is_set():
                    watched = True
                    self.connected.set()
            if watched:
                self.gave_up.set()

    def close(self) -> None:
        """Stop listening and reset every connection: waiting clients fail at once."""
        self.sock.close()
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


def test_a_hanging_redis_never_stalls_other_requests(database_url: str, tmp_path: Path) -> None:
    """The rate-limit counter is counted off the event loop: while one device request waits on
    a Redis that never answers, the same process still answers other requests."""
    from lerna.server.app import create_app

    silent = _SilentRedis()
    app = create_app(
        make_settings(database_url, tmp_path, redis_url=f"redis://127.0.0.1:{silent.port}/0")
    )
    try:
        with TestClient(app) as client:
            waiting = threading.Thread(
                target=client.get,
                args=("/v1/device/remote-config",),
                kwargs={"headers": {"Authorization": "Bearer not-a-device"}},
            )
            silent.armed.set()
            waiting.start()
            assert silent.connected.wait(10), "the device request never reached Redis"
            health: list[int] = []
            other = threading.Thread(
                target=lambda: health.append(client.get("/health").status_code)
            )
            other.start()
            other.join(5)
            answered_while_waiting = health == [200] and not silent.gave_up.is_set()
            silent.close()
            waiting.join(30)
            other.join(30)
            assert answered_while_waiting, "/health waited for the Redis call to time out"
    finally:
        silent.close()
        app.state.engine.dispose()
