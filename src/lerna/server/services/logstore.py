"""Where SDK error logs (and opted-in debug data) are kept: filesystem, S3, or memory (tests).

Every object lives under its app's prefix, ``app-<id>/<kind>/<day>/<name>``, so one app can
never list or read another's, and retention deletes whole days. Keys shown to customers omit
the app prefix and are checked against one pattern before any lookup (no path traversal).
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from lerna.server.errors import NotFound
from lerna.server.settings import Settings

KINDS = ("error", "debug")
KEY = re.compile(r"^(error|debug)/(\d{4}-\d{2}-\d{2})/([A-Za-z0-9._-]{1,128})$")


@dataclass(frozen=True)
class LogObject:
    key: str  # relative to the app: "<kind>/<day>/<name>"
    size: int
    device_id: int | None


def new_key(kind: str, device_id: int, now: datetime) -> str:
    return f"{kind}/{now.date().isoformat()}/{now:%H%M%S}-d{device_id}-{uuid.uuid4().hex[:12]}.log"


def check_key(key: str) -> re.Match[str]:
    match = KEY.match(key)
    if match is None:
        raise NotFound(f"log {key!r} not found")
    return match


def _device_of(key: str) -> int | None:
    found = re.search(r"-d(\d+)-", key)
    return int(found.group(1)) if found else None


def _cutoff(days: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


class LogStore(Protocol):
    def put(self, app_id: int, key: str, body: bytes) -> LogObject: ...
    def list(self, app_id: int, kind: str | None, limit: int) -> list[LogObject]: ...
    def get(self, app_id: int, key: str) -> bytes: ...
    def purge_older_than(self, days: int) -> int:
        """Delete objects from days more than ``days`` ago; the number deleted."""
        ...


class MemoryLogStore:
    def __init__(self) -> None:
        self._objects: dict[tuple[int, str], bytes] = {}
        self._lock = threading.Lock()

    def put(self, app_id: int, key: str, body: bytes) -> LogObject:
        check_key(key)
        with self._lock:
            self._objects[(app_id, key)] = body
        return LogObject(key, len(body), _device_of(key))

    def list(self, app_id: int, kind: str | None, limit: int) -> list[LogObject]:
        with self._lock:
            keys = sorted((k for a, k in self._objects if a == app_id), reverse=True)
            return [
                LogObject(k, len(self._objects[(app_id, k)]), _device_of(k))
                for k in keys
                if kind is None or k.startswith(kind + "/")
            ][:limit]

    def get(self, app_id: int, key: str) -> bytes:
        check_key(key)
        with self._lock:
            if (app_id, key) not in self._objects:
                raise NotFound(f"log {key!r} not found")
            return self._objects[(app_id, key)]

    def purge_older_than(self, days: int) -> int:
        cutoff = _cutoff(days)
        with self._lock:
            old = [k for k in self._objects if check_key(k[1]).group(2) < cutoff]
            for k in old:
                del self._objects[k]
        return len(old)


class FileLogStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, app_id: int, key: str) -> Path:
        check_key(key)
        return self.root / f"app-{app_id}" / key

    def put(self, app_id: int, key: str, body: bytes) -> LogObject:
        path = self._path(app_id, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        tmp.rename(path)  # readers never see half a file
        return LogObject(key, len(body), _device_of(key))

    def list(self, app_id: int, kind: str | None, limit: int) -> list[LogObject]:
        base = self.root / f"app-{app_id}"
        found: list[LogObject] = []
        for k in [kind] if kind else list(KINDS):
            for day in sorted((base / k).glob("????-??-??"), reverse=True):
                for path in sorted(day.glob("*.log"), reverse=True):
                    key = f"{k}/{day.name}/{path.name}"
                    found.append(LogObject(key, path.stat().st_size, _device_of(key)))
        found.sort(key=lambda o: o.key.split("/", 1)[1], reverse=True)
        return found[:limit]

    def get(self, app_id: int, key: str) -> bytes:
        path = self._path(app_id, key)
        if not path.is_file():
            raise NotFound(f"log {key!r} not found")
        return path.read_bytes()

    def purge_older_than(self, days: int) -> int:
        cutoff, deleted = _cutoff(days), 0
        for day in self.root.glob("app-*/*/????-??-??"):
            if day.name < cutoff:
                deleted += sum(1 for _ in day.glob("*.log"))
                shutil.rmtree(day, ignore_errors=True)
        return deleted


class S3LogStore:
    """S3 or any S3-compatible store (MinIO, Ceph) through boto3; credentials come from the
    usual AWS environment variables or instance role, never from Lerna's settings."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None) -> None:
        boto3 = importlib.import_module("boto3")  # optional dependency, only for this store
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url)
        self.bucket, self.prefix = bucket, prefix.strip("/")

    def _full(self, app_id: int, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/app-{app_id}/{key}"

    def put(self, app_id: int, key: str, body: bytes) -> LogObject:
        self.client.put_object(Bucket=self.bucket, Key=self._full(app_id, key), Body=body)
        return LogObject(key, len(body), _device_of(key))

    def _objects(self, prefix: str) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return [obj for page in pages for obj in page.get("Contents", [])]

    def list(self, app_id: int, kind: str | None, limit: int) -> list[LogObject]:
        base = f"{self.prefix}/app-{app_id}/"
        objs = self._objects(base + (f"{kind}/" if kind else ""))
        found = [
            LogObject(o["Key"][len(base) :], int(o["Size"]), _device_of(o["Key"])) for o in objs
        ]
        found.sort(key=lambda o: o.key.split("/", 1)[1], reverse=True)
        return found[:limit]

    def get(self, app_id: int, key: str) -> bytes:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._full(app_id, key))
        except self.client.exceptions.NoSuchKey:
            raise NotFound(f"log {key!r} not found") from None
        return bytes(obj["Body"].read())

    def purge_older_than(self, days: int) -> int:
        cutoff = _cutoff(days)
        old = [
            o["Key"]
            for o in self._objects(self.prefix + "/")
            if (m := KEY.match(o["Key"].split("/", 2)[-1])) and m.group(2) < cutoff
        ]
        for i in range(0, len(old), 1000):
            batch = [{"Key": k} for k in old[i : i + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})
        return len(old)


def make_store(settings: Settings) -> LogStore:
    if settings.log_storage == "s3":
        if not settings.log_s3_bucket:
            raise RuntimeError("LERNA_LOG_S3_BUCKET must be set when LERNA_LOG_STORAGE=s3")
        return S3LogStore(
            settings.log_s3_bucket, settings.log_s3_prefix, settings.log_s3_endpoint_url
        )
    return FileLogStore(settings.log_dir or settings.data_dir / "logs")


def today() -> date:
    return datetime.now(UTC).date()
