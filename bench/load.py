"""Load test of the production shape on loopback: N devices through nginx (HTTPS) against one
or two FL-API replicas on PostgreSQL and Redis. Run by hand; bounded in time and count.

    .venv/bin/python bench/load.py --devices 100 1000 5000 --replicas 1 2 --duration 60

Two figures per row, because they answer different questions:

- **Paced (open loop)**: each device checks in on its own schedule, every ``--interval``
  seconds on average (uniform jitter of +-50 %), the way the SDK's training conditions pace
  real devices; when selected it downloads the model (ETag) and uploads an update. The schedule
  does not wait for the server: a check-in is due at its time whether or not the previous one
  was answered, and its latency is measured from the time it was due, so queueing in the client
  counts (no coordinated omission). Offered rate = devices / interval; achieved = answered per
  second. This is the figure to compare with the target (p99 check-in latency at N devices).
- **Saturation (closed loop)**: ``--workers`` callers check in back to back for
  ``--saturation`` seconds with the enrolled devices' credentials: the most check-ins per second
  the stack answers. Its latency is queueing by construction (Little's law: workers / rate).

Also reported: errors by kind, resident memory of every server process (nginx and PostgreSQL
with their children). The load generator (one asyncio process, ``--connections`` keep-alive
connections to nginx) shares the machine's cores with the servers, so figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import ssl
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
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


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (a check-in's cost, whatever else runs)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
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
        # a patched tree can be measured without installing it: PYTHONPATH=/copy/src
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}),
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
            "logs": [p.log for p in procs],
        }


def server_checkins(logs: list[Path], start: float, end: float) -> dict[str, float]:
    """Check-in latency as the replicas logged it (admission queue to response, without nginx,
    the network or the load generator's own delays) between two wall-clock instants."""
    ms: list[float] = []
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if '"/v1/device/tasks/{task_id}/checkin"' not in line:
                continue
            try:
                entry = json.loads(line)
                ts = datetime.fromisoformat(entry["ts"]).timestamp()
            except (ValueError, KeyError):
                continue
            if start <= ts <= end:
                ms.append(float(entry["ms"]))
    lat = np.asarray(ms or [float("nan")])
    return {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))}


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.recording = False
        self.verbose = False

    async def call(
        self,
        http: httpx.AsyncClient,
        kind: str,
        method: str,
        url: str,
        due: float | None = None,
        **kw: Any,
    ) -> httpx.Response | None:
        """One request; its latency counts from ``due`` (when it should have been sent)."""
        started = time.perf_counter() if due is None else due
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

    def summary(self, kind: str, seconds: float) -> dict[str, float]:
        lat = np.asarray(self.latency.get(kind) or [float("nan")]) * 1000
        return {
            "per_s": len(self.latency.get(kind, [])) / seconds,
            "p50": float(np.percentile(lat, 50)),
            "p99": float(np.percentile(lat, 99)),
        }


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


async def enroll_all(http: httpx.AsyncClient, token: str, n: int) -> list[dict[str, str]]:
    """Enroll ``n`` devices, 32 at a time (enrollment is not what is measured)."""
    gate = asyncio.Semaphore(32)

    async def one() -> dict[str, str]:
        async with gate:
            r = await http.post(
                "/v1/devices/enroll",
                json={"device_uid": uuid.uuid4().hex},
                headers={"X-App-Token": token},
            )
            r.raise_for_status()
            return {"Authorization": f"Bearer {r.json()['credential']}"}

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def train_once(
    http: httpx.AsyncClient,
    rec: Recorder,
    auth: dict[str, str],
    task_id: int,
    job: dict[str, Any],
    cached: tuple[str, Manifest, dict[str, np.ndarray]] | None,
) -> tuple[str, Manifest, dict[str, np.ndarray]] | None:
    """What a selected device does: fetch the model (ETag), upload an update."""
    etag = {"If-None-Match": cached[0]} if cached else {}
    m = await rec.call(
        http, "download", "GET", f"/v1/device/tasks/{task_id}/model", headers={**auth, **etag}
    )
    if m is not None and m.status_code == 200:
        manifest, weights = load_archive(m.content)
        cached = (m.headers["etag"], manifest, weights)
    if cached is None:
        return None
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
    return cached


async def paced_device(
    http: httpx.AsyncClient,
    rec: Recorder,
    auth: dict[str, str],
    task_id: int,
    interval: float,
    until: float,
    seed: int,
) -> None:
    """Check in on a schedule that does not wait for answers (open loop)."""
    rng = random.Random(seed)
    cached: tuple[str, Manifest, dict[str, np.ndarray]] | None = None
    due = time.perf_counter() + rng.uniform(0, interval)
    pending: set[asyncio.Task[None]] = set()

    async def visit(due: float) -> None:
        nonlocal cached
        path = f"/v1/device/tasks/{task_id}/checkin"
        r = await rec.call(http, "checkin", "POST", path, due=due, headers=auth)
        if r is not None and r.status_code == 200 and r.json()["action"] == "train":
            cached = await train_once(http, rec, auth, task_id, r.json(), cached)

    while due < until:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        job = asyncio.create_task(visit(due))
        pending.add(job)
        job.add_done_callback(pending.discard)
        due += interval * rng.uniform(0.5, 1.5)
    if pending:
        await asyncio.wait(pending)


async def saturate(
    http: httpx.AsyncClient,
    rec: Recorder,
    devices: list[dict[str, str]],
    task_id: int,
    workers: int,
    seconds: float,
) -> None:
    """Back-to-back check-ins from ``workers`` callers (closed loop)."""
    until = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        k = i
        while time.perf_counter() < until:
            auth = devices[k % len(devices)]
            k += workers
            await rec.call(
                http, "checkin", "POST", f"/v1/device/tasks/{task_id}/checkin", headers=auth
            )

    await asyncio.gather(*(worker(i) for i in range(workers)))


async def run(
    url: str, cert: Path, n: int, args: argparse.Namespace, servers: list[int]
) -> dict[str, Any]:
    limits = httpx.Limits(
        max_connections=args.connections, max_keepalive_connections=args.connections
    )
    verify = ssl.create_default_context(cafile=str(cert))
    async with httpx.AsyncClient(base_url=url, verify=verify, timeout=30, limits=limits) as http:
        app, task = await provision(http, args.cohort)
        devices = await enroll_all(http, app["token"], n)
        rec = Recorder()
        warmup = min(10.0, args.interval)
        started = time.perf_counter()
        until = started + warmup + args.duration
        jobs = [
            asyncio.create_task(paced_device(http, rec, d, task["id"], args.interval, until, i))
            for i, d in enumerate(devices)
        ]
        await asyncio.sleep(warmup)  # first check-ins (cache fills, first round) not measured
        rec.recording, measured = True, time.perf_counter()
        wall, client_cpu = time.time(), time.process_time()
        await asyncio.gather(*jobs)
        seconds = time.perf_counter() - measured
        client_cpu = time.process_time() - client_cpu
        row: dict[str, Any] = {
            "devices": n,
            "offered": n / args.interval,
            "seconds": seconds,
            "errors": dict(rec.errors),
            "window": (wall, wall + seconds),
            "client_cores": client_cpu / seconds,  # the generator's share of the machine
        }
        for kind in ("checkin", "upload", "download"):
            row[kind] = rec.summary(kind, seconds)
        if args.saturation > 0:
            sat = Recorder()
            sat.recording = True
            cpu = cpu_seconds(servers)
            await saturate(http, sat, devices, task["id"], args.workers, args.saturation)
            cpu = cpu_seconds(servers) - cpu
            row["saturation"] = sat.summary("checkin", args.saturation)
            row["saturation"]["errors"] = sum(sat.errors.values())
            answered = len(sat.latency.get("checkin", []))
            row["saturation"]["cpu_ms"] = 1000 * cpu / max(1, answered)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=float, default=30.0, help="paced seconds measured")
    parser.add_argument(
        "--interval", type=float, default=10.0, help="mean seconds between a device's check-ins"
    )
    parser.add_argument("--cohort", type=int, default=50, help="devices selected per round")
    parser.add_argument(
        "--saturation", type=float, default=15.0, help="closed-loop seconds (0: skip)"
    )
    parser.add_argument("--workers", type=int, default=32, help="closed-loop callers")
    parser.add_argument("--connections", type=int, default=256)
    args = parser.parse_args()
    if max(args.devices) > MAX_DEVICES or args.duration > 300 or args.saturation > 120:
        parser.error(f"bounded: at most {MAX_DEVICES} devices, 300 s paced, 120 s saturation")
    rows = []
    with throwaway_postgres(max_connections=300) as pg, redis_server() as redis_url:
        for replicas in args.replicas:
            for n in args.devices:
                with (
                    tempfile.TemporaryDirectory(prefix="lerna-load-") as tmp,
                    stack(replicas, pg, redis_url, Path(tmp)) as s,
                ):
                    servers = [pid for name, pid in s["pids"].items() if name.startswith("fl-api")]
                    row = asyncio.run(run(s["url"], s["cert"], n, args, servers))
                    row["replicas"] = replicas
                    row["server"] = server_checkins(s["logs"], *row["window"])
                    row["rss"] = {name: tree_rss_mb(pid) for name, pid in s["pids"].items()}
                    rows.append(row)
                    print_row(row, flush=True)
    print(
        f"\npaced: every device every {args.interval:g} s +-50 %, cohort {args.cohort};"
        f" saturation: {args.workers} callers back to back for {args.saturation:g} s"
    )
    print("cpu ms: FL-API CPU per answered check-in during saturation (all replicas)")
    print("srv p50/p99: paced check-ins as the replicas logged them (from admission to response);")
    print("gen cores: CPU the load generator itself used during the paced phase (of 2 cores)")
    print("memory (MB RSS, after the run):")
    for row in rows:
        print(
            f"  {row['replicas']} replica(s), {row['devices']} devices: "
            + ", ".join(f"{k} {v:.0f}" for k, v in row["rss"].items())
        )


HEADER = (
    f"{'repl':>4} {'devices':>7} {'offered/s':>9} {'answered/s':>10} {'p50 ms':>7} {'p99 ms':>7}"
    f" {'upload/s':>8} {'p99 ms':>7} {'errors':>6} | {'sat/s':>6} {'p50 ms':>7} {'p99 ms':>7}"
    f" {'cpu ms':>6} | {'srv p50':>7} {'srv p99':>7} {'gen cores':>9}"
)


def print_row(row: dict[str, Any], flush: bool = False) -> None:
    if not getattr(print_row, "header", False):
        print(HEADER)
        print_row.header = True  # type: ignore[attr-defined]
    c, u = row["checkin"], row["upload"]
    errors = sum(row["errors"].values())
    nan = float("nan")
    sat = row.get("saturation") or {"per_s": nan, "p50": nan, "p99": nan, "cpu_ms": nan}
    print(
        f"{row['replicas']:>4} {row['devices']:>7} {row['offered']:>9.1f} {c['per_s']:>10.1f}"
        f" {c['p50']:>7.1f} {c['p99']:>7.1f} {u['per_s']:>8.1f} {u['p99']:>7.1f} {errors:>6}"
        f" | {sat['per_s']:>6.1f} {sat['p50']:>7.1f} {sat['p99']:>7.1f} {sat['cpu_ms']:>6.1f}"
        f" | {row['server']['p50']:>7.1f} {row['server']['p99']:>7.1f} {row['client_cores']:>9.2f}"
        + (f"  {row['errors']}" if errors else "")
        + (f"  saturation errors {sat['errors']}" if sat.get("errors") else ""),
        flush=flush,
    )


if __name__ == "__main__":
    main()
