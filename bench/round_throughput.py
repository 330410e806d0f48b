"""Round throughput of the FL-API on PostgreSQL (run by hand, not in CI).

Starts a throwaway PostgreSQL and `lerna serve fl-api` as its own process, creates a task whose
logistic model has ~100k parameters, then drives cohorts of 100 and of 1,000 devices through
the real HTTP protocol (enroll, check in, download, upload), concurrently. Prints completed
device-rounds per second, p50/p99 request latency and the server's peak RSS after each cohort
(it should stay flat: aggregation is a running sum, not a list of updates).

    .venv/bin/python bench/round_throughput.py [--devices 100 1000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pgserver import free_port, new_database, throwaway_postgres

from lerna.core.weights import Manifest, dump_archive, layout_of, load_archive

VOCAB = 5_880  # logistic params = 16 + V + 16 V  ~= 100k


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def provision(http: httpx.AsyncClient, cohort: int) -> tuple[dict, dict, dict]:  # type: ignore[type-arg]
    email = f"{uuid.uuid4().hex[:8]}@bench.dev"
    await http.post(
        "/api/auth/register", json={"email": email, "password": "bench-password", "name": "b"}
    )
    tok = (
        await http.post("/api/auth/login", json={"email": email, "password": "bench-password"})
    ).json()
    headers = {"Authorization": f"Bearer {tok['access_token']}"}
    app = (await http.post("/api/apps", json={"name": "bench"}, headers=headers)).json()
    schema = {"items": {"categorical": {"tag": [f"t{i}" for i in range(VOCAB)]}}}
    task = await http.post(
        f"/api/apps/{app['id']}/tasks",
        json={
            "name": f"bench{cohort}",
            "cohort_size": cohort,
            "min_participants": cohort,
            "selection_seconds": 3600,
            "upload_seconds": 3600,
            "feature_schema": schema,
            # plain FedAvg: this measures the round machinery; bench/secagg.py measures SecAgg+
            "privacy": {"mode": "none", "noise_multiplier": 0, "epsilon_budget": None},
            "catalog": {"items": {"i0": {"tag": "t0"}}},
        },
        headers=headers,
    )
    task.raise_for_status()
    return headers, app, task.json()


async def device_round(
    http: httpx.AsyncClient,
    token: str,
    task_id: int,
    latencies: list[float],
    sem: asyncio.Semaphore,
    seed: int,
) -> None:
    async def call(method: str, url: str, **kw: object) -> httpx.Response:
        async with sem:
            t = time.perf_counter()
            r = await http.request(method, url, **kw)  # type: ignore[arg-type]
            latencies.append(time.perf_counter() - t)
        r.raise_for_status()
        return r

    cred = (
        await call(
            "POST",
            "/v1/devices/enroll",
            json={"device_uid": uuid.uuid4().hex},
            headers={"X-App-Token": token},
        )
    ).json()
    dev = {"Authorization": f"Bearer {cred['credential']}"}
    assignment = (await call("POST", f"/v1/device/tasks/{task_id}/checkin", headers=dev)).json()
    manifest, weights = load_archive(
        (await call("GET", f"/v1/device/tasks/{task_id}/model", headers=dev)).content
    )
    rng = np.random.default_rng(seed)
    update = {k: (rng.normal(size=v.shape) * 1e-3).astype(np.float32) for k, v in weights.items()}
    meta = {
        "round_id": assignment["round_id"],
        "base_version": 0,
        "num_examples": 10,
        "upload_id": uuid.uuid4().hex,
    }
    archive = dump_archive(
        Manifest(
            kind="update", model=manifest.model, version=0, arrays=layout_of(update), meta=meta
        ),
        update,
    )
    await call(
        "POST", f"/v1/device/rounds/{assignment['round_id']}/upload", content=archive, headers=dev
    )


async def run_cohort(base: str, n: int, concurrency: int, pid: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as http:
        headers, app, task = await provision(http, n)
        latencies: list[float] = []
        sem = asyncio.Semaphore(concurrency)
        start = time.perf_counter()
        await asyncio.gather(
            *(device_round(http, app["token"], task["id"], latencies, sem, i) for i in range(n))
        )
        while True:
            versions = (
                await http.get(
                    f"/api/apps/{app['id']}/tasks/{task['id']}/versions", headers=headers
                )
            ).json()
            if len(versions) > 1:
                break
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - start
    lat = np.asarray(latencies) * 1000
    return {
        "devices": n,
        "seconds": seconds,
        "device_rounds_per_s": n / seconds,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "rss_mb": current_rss_mb(pid),
        "peak_rss_mb": peak_rss_mb(pid),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with throwaway_postgres() as pg:
        url = new_database(pg)
        port = free_port()
        env = {
            **os.environ,
            "LERNA_DATABASE_URL": url,
            "LERNA_JWT_SECRET": "b" * 48,
            "LERNA_DATA_DIR": "/tmp/lerna-bench",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "lerna.cli", "serve", "fl-api", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            rows = [
                asyncio.run(run_cohort(base, n, args.concurrency, server.pid)) for n in args.devices
            ]
        finally:
            server.terminate()
            server.wait(10)
    print(
        f"model: logistic, {16 + VOCAB + 16 * VOCAB:,} parameters; PostgreSQL; concurrency {args.concurrency}"
    )
    print(
        f"{'devices':>8} {'seconds':>8} {'dev-rounds/s':>13} {'p50 ms':>8} {'p99 ms':>8} {'RSS MB':>8} {'peak MB':>8}"
    )
    for r in rows:
        print(
            f"{r['devices']:>8} {r['seconds']:>8.1f} {r['device_rounds_per_s']:>13.1f} {r['p50_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f} {r['rss_mb']:>8.0f} {r['peak_rss_mb']:>8.0f}"
        )


if __name__ == "__main__":
    main()
