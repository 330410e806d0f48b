"""A small cache with two implementations: in-process (the embedded default) and Redis.

Replicas share Redis, so what one replica caches or counts the others see; without Redis each
process keeps its own bounded LRU, which is right for one process. Redis failures never fail
a request: a read is a miss, a write is dropped, a counter reads 0 (rate limits fail open),
and ``/ready`` reports the outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("lerna.server.cache")
PREFIX = "lerna:"


class Cache(Protocol):
    # whether a call may wait on the network (up to its timeout): code on the event loop must
    # then make it from a worker thread, or one slow Redis stalls every request of the process
    blocking: bool

    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes, ttl: float) -> None: ...
    def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Set only if ``key`` holds nothing: a reader filling the cache must not overwrite the
        marker a writer left (see ``devices``). False when something was there (or on error)."""
        ...

    def delete(self, key: str) -> None: ...
    def incr(self, key: str, ttl: float) -> int:
        """Add one to a counter that expires ``ttl`` seconds after its first increment."""
        ...

    def ping(self) -> bool | None:
        """True/False for a reachable/unreachable server; None when there is no server."""
        ...

    def close(self) -> None: ...


class MemoryCache:
    """Thread-safe LRU bounded by total bytes, with per-entry expiry."""

    blocking = False

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._counters: dict[str, tuple[float, int]] = {}
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[0] < time.monotonic():
                self._drop(key)
                return None
            self._data.move_to_end(key)
            return item[1]

    def set(self, key: str, value: bytes, ttl: float) -> None:
        with self._lock:
            self._put(key, value, ttl)

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        with self._lock:
            item = self._data.get(key)
            if item is not None and item[0] >= time.monotonic():
                return False
            self._put(key, value, ttl)
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._drop(key)

    def incr(self, key: str, ttl: float) -> int:
        now = time.monotonic()
        with self._lock:
            expires, count = self._counters.get(key, (now + ttl, 0))
            if expires < now:
                expires, count = now + ttl, 0
            if len(self._counters) > 100_000:  # forget expired windows
                self._counters = {k: v for k, v in self._counters.items() if v[0] >= now}
            self._counters[key] = (expires, count + 1)
            return count + 1

    def ping(self) -> bool | None:
        return None

    def close(self) -> None:
        pass

    def _put(self, key: str, value: bytes, ttl: float) -> None:
        if len(value) > self.max_bytes // 4:
            return  # one huge entry would evict everything else
        self._drop(key)
        self._data[key] = (time.monotonic() + ttl, value)
        self._size += len(value)
        while self._size > self.max_bytes:
            self._drop(next(iter(self._data)))

    def _drop(self, key: str) -> None:
        item = self._data.pop(key, None)
        if item is not None:
            self._size -= len(item[1])


class RedisCache:
    """Redis with short timeouts: a slow or absent Redis degrades to cache misses."""

    blocking = True

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
        )
        self._errors = redis.RedisError
        self._last_warning = 0.0

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning > 30:  # one line per 30 s, not one per request
            self._last_warning = now
            log.warning("redis unavailable; degrading to no cache", extra={"error": str(exc)})

    def get(self, key: str) -> bytes | None:
        try:
            value = self._redis.get(PREFIX + key)
        except self._errors as exc:
            self._warn(exc)
            return None
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes, ttl: float) -> None:
        try:
            self._redis.set(PREFIX + key, value, px=max(1, int(ttl * 1000)))
        except self._errors as exc:
            self._warn(exc)

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        try:
            return bool(self._redis.set(PREFIX + key, value, px=max(1, int(ttl * 1000)), nx=True))
        except self._errors as exc:
            self._warn(exc)
            return False

    def delete(self, key: str) -> None:
        try:
            self._redis.delete(PREFIX + key)
        except self._errors as exc:
            self._warn(exc)

    def incr(self, key: str, ttl: float) -> int:
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.incr(PREFIX + key)
            pipe.pexpire(PREFIX + key, max(1, int(ttl * 1000)), nx=True)
            count, _ = pipe.execute()
            return int(count)
        except self._errors as exc:
            self._warn(exc)
            return 0

    def ping(self) -> bool | None:
        try:
            return bool(self._redis.ping())
        except self._errors:
            return False

    def close(self) -> None:
        self._redis.close()


def make_cache(redis_url: str | None) -> Cache:
    return RedisCache(redis_url) if redis_url else MemoryCache()


def cached(cache: Cache, key: str, ttl: float, load: Callable[[], bytes]) -> bytes:
    """Read-through: for immutable values (a published model version's archive)."""
    value = cache.get(key)
    if value is None:
        value = load()
        cache.set(key, value, ttl)
    return value
