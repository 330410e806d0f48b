"""Load test of the production shape on loopback: N devices through nginx (HTTPS) against one
or two FL-API replicas on PostgreSQL and Redis. Run by hand; bounded in time and count.

    .venv/bin/python bench/load.py --devices 100 1000 --replicas 1 2 --duration 20

Each device enrolls, then loops: check in; when selected, download the model (ETag) and upload
an update; then sleep a jittered ``--think`` seconds, as a real device paces itself. Reports
check-ins and uploads per second, p50/p99 latency per call, errors, and resident memory of
every server process. The load generator shares the machine's cores with the servers (one
asyncio process, ``--connections`` keep-alive connections to nginx), so figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import ssl
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import CATALOG, PLAIN, SCHEMA  # noqa: E402
from tests.ops.services import Process, free_port, redis_server, self_signed_cert  # noqa: E402
from tests.pgserver import new_database, throwaway_postgres  # noqa: E402

from lerna.core.weights import Manifest, dump_archive, layout_of, load_archive  # noqa: E402

MAX_DEVICES = 10_000


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_rss_mb(pid: int) -> float:
    """A process and its children (nginx workers, PostgreSQL backends)."""
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        total += rss_mb(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            stack += [int(c) for c in task.read_text().split()]
    return total


@contextmanager
def stack(replicas: int, pg_url: str, redis_url: str, tmp: Path) -> Iterator[dict[str, Any]]:
    """FL-API replicas and nginx on a fresh database; yields the URL and process ids."""
    spec = __import__("importlib.util").util.spec_from_file_location(
        "render_nginx", ROOT / "deploy" / "render_nginx.py"
    )
    render = __import__("importlib.util").util.module_from_spec(spec)
    spec.loader.exec_module(render)
    cert, key = self_signed_cert(tmp)
    env = {
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
        "LERNA_ENV_FILE": str(tmp / "none.env"),
        "LERNA_DATABASE_URL": new_database(pg_url),
        "LERNA_REDIS_URL": redis_url,
        "LERNA_JWT_SECRET": uuid.uuid4().hex * 2,
        "LERNA_SECRETS_KEY": Fernet.generate_key().decode(),
        "LERNA_RATE_LIMIT_APP_PER_MINUTE": "0",
        "LERNA_LOG_FORMAT": "json",
    }
    with ExitStack() as stop:
        procs = []
        for i in range(replicas):
            port = free_port()
            argv = [sys.executable, "-m", "lerna.cli", "serve", "fl-api", "--port", str(port)]
            proc = Process(
                f"fl-api-{i}",
                argv,
                {**env, "LERNA_DATA_DIR": str(tmp / f"fl{i}")},
                port,
                tmp / f"fl{i}.log",
            )
            stop.callback(proc.stop)
            procs.append(proc.start())
        https = free_port()
        site = render.render_site(
            fl_api=[f"127.0.0.1:{p.port}" for p in procs],
            mpc="127.0.0.1:9",
            recommender="127.0.0.1:9",
            cert=str(cert),
            key=str(key),
            https_listen=f"127.0.0.1:{https}",
            http_listen=f"127.0.0.1:{free_port()}",
        )
        prefix = tmp / "nginx"
        prefix.mkdir(exist_ok=True)
        (prefix / "nginx.conf").write_text(render.render_standalone(site, prefix, workers=1))
        nginx = Process(
            "nginx",
            ["nginx", "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
            env,
            https,
            tmp / "nginx.out",
        )
        stop.callback(nginx.stop)
        nginx.start()
        yield {
            "url": f"https://127.0.0.1:{https}",
            "cert": cert,
            "pids": {p.name: p.proc.pid for p in [*procs, nginx] if p.proc},
        }


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.recording = False
        self.verbose = False

    async def call(
        self, http: httpx.AsyncClient, kind: str, method: str, url: str, **kw: Any
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            r = await http.request(method, url, **kw)
        except httpx.HTTPError as exc:
            if self.recording:
                self.errors[f"{kind}:{type(exc).__name__}"] += 1
            return None
        if self.recording:
            self.latency[kind].append(time.perf_counter() - started)
            if r.status_code >= 400 and not (kind == "upload" and r.status_code == 409):
                self.errors[f"{kind}:{r.status_code}"] += 1
                if self.verbose:
                    print(kind, r.status_code, r.headers.get("server"), r.text[:200], flush=True)
        return r


async def provision(http: httpx.AsyncClient, cohort: int) -> tuple[dict[str, Any], dict[str, Any]]:
    email = f"{uuid.uuid4().hex[:8]}@bench.example.com"
    body = {"email": email, "password": "bench-password-1", "name": "bench"}
    (await http.post("/api/auth/register", json=body)).raise_for_status()
    login = (
        await http.post("/api/auth/login", json={"email": email, "password": body["password"]})
    ).json()
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    app = (await http.post("/api/apps", json={"name": "load"}, headers=headers)).json()
    task = await http.post(
        f"/api/apps/{app['id']}/tasks",
        json={
            "name": "load",
            "feature_schema": SCHEMA,
            "catalog": {"items": CATALOG},
            "privacy": PLAIN,
            "cohort_size": cohort,
            "min_participants": 1,
            "selection_seconds": 5,
            "upload_seconds": 10,
        },
        headers=headers,
    )
    if task.status_code != 201:
        raise RuntimeError(f"task creation failed: {task.status_code} {task.text}")
    return app, task.json()


async def device(
    http: httpx.AsyncClient,
    rec: Recorder,
    token: str,
    task_id: int,
    think: float,
    until: float,
    seed: int,
) -> None:
    rng = random.Random(seed)
    r = await rec.call(
        http,
        "enroll",
        "POST",
        "/v1/devices/enroll",
        json={"device_uid": uuid.uuid4().hex},
        headers={"X-App-Token": token},
    )
    if r is None or r.status_code != 201:
        return
    auth = {"Authorization": f"Bearer {r.json()['credential']}"}
    cached: tuple[str, Manifest, dict[str, np.ndarray]] | None = None
    await asyncio.sleep(rng.uniform(0, think))
    while time.monotonic() < until:
        r = await rec.call(
            http, "checkin", "POST", f"/v1/device/tasks/{task_id}/checkin", headers=auth
        )
        if r is not None and r.status_code == 200 and r.json()["action"] == "train":
            job = r.json()
            etag = {"If-None-Match": cached[0]} if cached else {}
            m = await rec.call(
                http,
                "download",
                "GET",
                f"/v1/device/tasks/{task_id}/model",
                headers={**auth, **etag},
            )
            if m is not None and m.status_code == 200:
                manifest, weights = load_archive(m.content)
                cached = (m.headers["etag"], manifest, weights)
            if cached is not None:
                _, manifest, weights = cached
                update = {k: np.full_like(v, 0.01) for k, v in weights.items()}
                meta = {
                    "round_id": job["round_id"],
                    "base_version": job["base_version"],
                    "num_examples": 5,
                    "upload_id": uuid.uuid4().hex,
                }
                archive = dump_archive(
                    Manifest(
                        kind="update",
                        model=manifest.model,
                        version=job["base_version"],
                        arrays=layout_of(update),
                        meta=meta,
                    ),
                    update,
                )
                await rec.call(
                    http,
                    "upload",
                    "POST",
                    f"/v1/device/rounds/{job['round_id']}/upload",
                    content=archive,
                    headers={**auth, "Content-Type": "application/octet-stream"},
                )
        await asyncio.sleep(think * rng.uniform(0.5, 1.5))


async def run(
    url: str, cert: Path, n: int, duration: float, think: float, connections: int
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    verify = ssl.create_default_context(cafile=str(cert))
    async with httpx.AsyncClient(base_url=url, verify=verify, timeout=30, limits=limits) as http:
        app, task = await provision(http, n)
        rec = Recorder()
        warmup = min(10.0, think * 2)
        until = time.monotonic() + warmup + duration
        devices = [
            asyncio.create_task(device(http, rec, app["token"], task["id"], think, until, i))
            for i in range(n)
        ]
        await asyncio.sleep(warmup)  # enrollment and the first check-ins are not measured
        rec.recording, started = True, time.monotonic()
        await asyncio.gather(*devices)
        seconds = time.monotonic() - started
    row: dict[str, Any] = {"devices": n, "seconds": seconds, "errors": dict(rec.errors)}
    for kind in ("checkin", "upload", "download"):
        lat = np.asarray(rec.latency.get(kind, [0.0])) * 1000
        row[kind] = {
            "per_s": len(rec.latency.get(kind, [])) / seconds,
            "p50": float(np.percentile(lat, 50)),
            "p99": float(np.percentile(lat, 99)),
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument(
        "--think", type=float, default=2.0, help="mean seconds between a device's check-ins"
    )
    parser.add_argument("--connections", type=int, default=256)
    args = parser.parse_args()
    if max(args.devices) > MAX_DEVICES or args.duration > 300:
        parser.error(f"bounded: at most {MAX_DEVICES} devices and 300 s a run")
    rows = []
    with throwaway_postgres(max_connections=300) as pg, redis_server() as redis_url:
        for replicas in args.replicas:
            for n in args.devices:
                with (
                    tempfile.TemporaryDirectory(prefix="lerna-load-") as tmp,
                    stack(replicas, pg, redis_url, Path(tmp)) as s,
                ):
                    row = asyncio.run(
                        run(s["url"], s["cert"], n, args.duration, args.think, args.connections)
                    )
                    row["replicas"] = replicas
                    row["rss"] = {name: tree_rss_mb(pid) for name, pid in s["pids"].items()}
                    rows.append(row)
                    print_row(row, flush=True)
    print("\nmemory (MB RSS, after the run):")
    for row in rows:
        print(
            f"  {row['replicas']} replica(s), {row['devices']} devices: "
            + ", ".join(f"{k} {v:.0f}" for k, v in row["rss"].items())
        )


HEADER = f"{'repl':>4} {'devices':>7} {'checkin/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'upload/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7}"


def print_row(row: dict[str, Any], flush: bool = False) -> None:
    if not getattr(print_row, "header", False):
        print(HEADER)
        print_row.header = True  # type: ignore[attr-defined]
    c, u = row["checkin"], row["upload"]
    errors = sum(row["errors"].values())
    print(
        f"{row['replicas']:>4} {row['devices']:>7} {c['per_s']:>9.1f} {c['p50']:>7.1f} {c['p99']:>7.1f} "
        f"{u['per_s']:>8.1f} {u['p50']:>7.1f} {u['p99']:>7.1f} {errors:>7}"
        + (f"  {row['errors']}" if errors else ""),
        flush=flush,
    )


if __name__ == "__main__":
    main()
