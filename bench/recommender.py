"""MovieLens-100K benchmark of the recommendation service against SAR and implicit ALS/BPR.

Protocol (Microsoft Recommenders' SAR notebook): per-user stratified random 75/25 split with a
fixed seed, top 10, every item a user rated in training removed from their list, all of a
user's test ratings relevant; NDCG@10, P@10 and MAP as Microsoft Recommenders defines them
(lerna.recommender.metrics). SAR's figures are its published ones (0.382 / 0.331 / 0.111 on
the same protocol); ALS and BPR run here, on the same split. Then speed: training time against
implicit ALS, the training job over HTTP, and query latency over HTTP (uvicorn in a
subprocess on a free loopback port) with 1 and 16 concurrent clients. Last, the hybrid
(lerna.sim.hybrid): server candidates re-ranked on the device against each alone.

Run: .venv/bin/python bench/recommender.py [--seed 42] [--queries 2000]
     [--skip-quality] [--skip-http] [--skip-hybrid] [--hybrid-rounds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import scipy.sparse as sp

from lerna.recommender.catalog import ItemCatalog
from lerna.recommender.cco import EventTable, train_cco
from lerna.recommender.config import AlgorithmConfig
from lerna.recommender.metrics import RankingScores, ranking_metrics
from lerna.recommender.query import InstalledModel, recommend
from lerna.recommender.schemas import Query

SAR = RankingScores(ndcg=0.382461, precision=0.330753, map=0.110591, recall=0.176385, users=943)
Rating = tuple[str, str, float, float]  # user, item, rating, timestamp


def ml100k_dir() -> Path:
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("MovieLens-100K needs: pip install --no-deps recbole==1.2.1")
    return Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / "ml-100k"


def load() -> tuple[list[Rating], dict[str, list[str]]]:
    base = ml100k_dir()
    ratings: list[Rating] = []
    with open(base / "ml-100k.inter", encoding="utf-8") as f:
        next(f)
        for line in f:
            u, i, r, t = line.rstrip("\n").split("\t")
            ratings.append((u, i, float(r), float(t)))
    genres: dict[str, list[str]] = {}
    with open(base / "ml-100k.item", encoding="latin-1") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            genres[parts[0]] = parts[3].split() if len(parts) > 3 else []
    return ratings, genres


def stratified_split(
    ratings: list[Rating], ratio: float, seed: int
) -> tuple[list[Rating], list[Rating]]:
    """Per user, a seeded shuffle; the first round(ratio * n) ratings train, the rest test."""
    rng = np.random.default_rng(seed)
    by_user: dict[str, list[Rating]] = defaultdict(list)
    for r in ratings:
        by_user[r[0]].append(r)
    train: list[Rating] = []
    test: list[Rating] = []
    for user in sorted(by_user, key=int):
        rows = by_user[user]
        order = rng.permutation(len(rows))
        cut = round(ratio * len(rows))
        train += [rows[k] for k in order[:cut]]
        test += [rows[k] for k in order[cut:]]
    return train, test


SCORED = {"normalizeHistory": True, "targetDamping": 0.5, "popularityWeight": 0.2}
VARIANTS: dict[str, dict[str, Any]] = {
    "UR like(>=4)": {"indicators": ["like"]},
    "UR like + dislike(<=2)": {"indicators": ["like", "dislike"]},
    "UR like + dislike + genre": {"indicators": ["like", "dislike", "like-genre"]},
    "UR rated + like": {"indicators": ["rated", "like"]},
    "UR like + rated, scored": {"indicators": ["like", "rated"], "scoring": SCORED},
    "UR rated + like, scored": {"indicators": ["rated", "like"], "scoring": SCORED},
}
"""Rows of the table. "UR" rows are plain LLR sums (the engine default); "scored" rows set the
engine's ``scoring`` section (history normalisation, target damping, popularity prior)."""


def events_of(
    train: list[Rating], genres: dict[str, list[str]]
) -> list[tuple[str, str, str, float]]:
    rows: list[tuple[str, str, str, float]] = []
    for u, i, r, t in train:
        rows.append((u, i, "rated", t))
        if r >= 4:
            rows.append((u, i, "like", t))
            rows += [(u, g, "like-genre", t) for g in genres.get(i, [])]
        if r <= 2:
            rows.append((u, i, "dislike", t))
    return rows


def algo_json(variant: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The engine JSON's ``algorithm`` section of a table row."""
    out = {"indicators": [{"name": n} for n in variant["indicators"]], **extra}
    if "scoring" in variant:
        out["scoring"] = variant["scoring"]
    return out


def run_cco(
    name: str, train: list[Rating], genres: dict[str, list[str]], k: int
) -> tuple[dict[str, list[str]], float]:
    config = AlgorithmConfig.model_validate(algo_json(VARIANTS[name], num=k, maxQueryEvents=500))
    names = set(VARIANTS[name]["indicators"])
    rows = [r for r in events_of(train, genres) if r[2] in names]
    started = time.perf_counter()
    model = train_cco(config, EventTable.from_rows(rows))
    seconds = time.perf_counter() - started
    catalog = ItemCatalog()
    for item, g in genres.items():
        catalog.set_properties(item, {"genre": g})
    installed = InstalledModel.install(model, catalog)
    history: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    seen: dict[str, list[str]] = defaultdict(list)
    for u, i, ind, _ in sorted(rows, key=lambda r: -r[3]):
        history[u][ind].append(i)
    for u, i, _, _ in train:
        seen[u].append(i)
    predicted = {}
    for user in seen:
        query = Query(user=user, num=k, blacklistItems=seen[user])
        result = recommend(config, installed, catalog, query, history[user])
        predicted[user] = [r.item for r in result]
    return predicted, seconds


def run_implicit(
    kind: str, train: list[Rating], k: int, seed: int
) -> tuple[dict[str, list[str]], float]:
    warnings.filterwarnings("ignore", message="OpenBLAS is configured", category=RuntimeWarning)
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking

    users = sorted({r[0] for r in train}, key=int)
    items = sorted({r[1] for r in train}, key=int)
    ui, ii = {u: n for n, u in enumerate(users)}, {i: n for n, i in enumerate(items)}
    rows = np.asarray([ui[r[0]] for r in train])
    cols = np.asarray([ii[r[1]] for r in train])
    matrix = sp.csr_matrix(
        (np.ones(len(train), np.float32), (rows, cols)), (len(users), len(items))
    )
    if kind == "ALS":
        model: Any = AlternatingLeastSquares(
            factors=64, regularization=0.05, alpha=2.0, iterations=15, random_state=seed
        )
    else:
        model = BayesianPersonalizedRanking(
            factors=64, learning_rate=0.01, regularization=0.01, iterations=200, random_state=seed
        )
    started = time.perf_counter()
    model.fit(matrix, show_progress=False)
    seconds = time.perf_counter() - started
    ids, _ = model.recommend(np.arange(len(users)), matrix, N=k, filter_already_liked_items=True)
    return {u: [items[j] for j in ids[n]] for n, u in enumerate(users)}, seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def percentiles(samples: list[float]) -> tuple[float, float]:
    ms = np.asarray(samples) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


async def _client(port: int, bodies: list[bytes], samples: list[float]) -> None:
    """One keep-alive HTTP/1.1 connection sending its queries back to back.

    A raw-socket client, like wrk: httpx spends about a millisecond of CPU per request, which
    on 2 shared cores is taken from the server and measured as server latency.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for body in bodies:
            head = (f"POST /engines/ml/queries HTTP/1.1\r\nHost: bench\r\nContent-Type: "
                    f"application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
            started = time.perf_counter()
            writer.write(head + body)
            status_and_headers = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in status_and_headers.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            payload = await reader.readexactly(length)
            samples.append(time.perf_counter() - started)
            ok = status_and_headers.startswith(b"HTTP/1.1 200")
            assert ok and len(json.loads(payload)["result"]) == 20, payload[:200]
    finally:
        writer.close()
        await writer.wait_closed()


async def _load(port: int, users: list[str], clients: int, total: int) -> list[float]:
    samples: list[float] = []
    bodies = [json.dumps({"user": users[n % len(users)]}).encode() for n in range(total)]
    await asyncio.gather(*(_client(port, bodies[w::clients], samples) for w in range(clients)))
    return samples


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process used so far: per-query server cost that, unlike
    latency, does not depend on what else the shared machine runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_latency(
    variant: dict[str, Any], train: list[Rating], genres: dict[str, list[str]], total: int
) -> tuple[dict[int, tuple[float, float, float]], float]:
    """Query latency per number of clients, and the seconds of the training job (store read,
    training, model save) as the service reports them."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "LERNA_DATA_DIR": tmp}
        cmd = [sys.executable, "-m", "uvicorn", "--factory",
               "lerna.recommender.app:create_app_from_env", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
        server = subprocess.Popen(cmd, env=env)
        try:
            with httpx.Client(base_url=base, timeout=60) as http:
                for _ in range(200):
                    try:
                        if http.get("/").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.05)
                config = {"engineId": "ml", "algorithm": algo_json(variant, num=20)}
                assert http.post("/engines", json=config).status_code == 201
                names = set(variant["indicators"])
                lines = [json.dumps({"event": "$set", "entityType": "item", "entityId": i,
                                     "properties": {"genre": g}}) for i, g in genres.items()]  # fmt: skip
                lines += [
                    json.dumps({"event": e, "entityType": "user", "entityId": u,
                                "targetEntityId": i, "eventTime": t})
                    for u, i, e, t in events_of(train, genres) if e in names
                ]  # fmt: skip
                r = http.post("/engines/ml/imports", content="\n".join(lines).encode())
                assert r.status_code == 201, r.text
                job = http.post("/engines/ml/jobs").json()["jobId"]
                while (info := http.get(f"/engines/ml/jobs/{job}").json())[
                    "status"
                ] != "successful":
                    assert info["status"] in ("queued", "executing"), info
                    time.sleep(0.05)
                job_seconds = info["finishedAt"] - info["startedAt"]
                users = sorted({r[0] for r in train}, key=int)
                asyncio.run(_load(port, users, 1, len(users)))  # warm the history cache
                latency = {}
                for c in (1, 16):
                    cpu = _cpu_seconds(server.pid)
                    samples = asyncio.run(_load(port, users, c, total))
                    per_query_ms = (_cpu_seconds(server.pid) - cpu) / total * 1000
                    latency[c] = (*percentiles(samples), per_query_ms)
                return latency, job_seconds
        finally:
            server.terminate()
            server.wait(timeout=10)


def quality(args: argparse.Namespace, train: list[Rating], test: list[Rating],
            genres: dict[str, list[str]]) -> str:  # fmt: skip
    """Print the quality table; return the name of the best CCO row."""
    k = 10
    truth: dict[str, set[str]] = defaultdict(set)
    for u, i, _, _ in test:
        truth[u].add(i)
    rows: list[tuple[str, RankingScores, float | None]] = [("SAR (published)", SAR, None)]
    for name in VARIANTS:
        predicted, seconds = run_cco(name, train, genres, k)
        rows.append((name, ranking_metrics(truth, predicted, k), seconds))
    for kind in ("ALS", "BPR"):
        predicted, seconds = run_implicit(kind, train, k, args.seed)
        rows.append((f"implicit {kind}", ranking_metrics(truth, predicted, k), seconds))
    als_seconds = next(s for n, _, s in rows if n == "implicit ALS")
    assert als_seconds is not None
    print(f"{'model':38} {'NDCG@10':>8} {'/SAR':>6} {'P@10':>7} {'/SAR':>6} {'MAP':>7} "
          f"{'/SAR':>6} {'train s':>8} {'/ALS':>6}")  # fmt: skip
    for name, m, took in rows:
        train_s = f"{took:8.3f} {took / als_seconds:6.2f}" if took is not None else ""
        print(f"{name:38} {m.ndcg:8.4f} {m.ndcg / SAR.ndcg:6.2f} {m.precision:7.4f} "
              f"{m.precision / SAR.precision:6.2f} {m.map:7.4f} {m.map / SAR.map:6.2f} {train_s}")  # fmt: skip
    return max(rows[1 : 1 + len(VARIANTS)], key=lambda r: r[1].ndcg)[0]


def speed(name: str, train: list[Rating], genres: dict[str, list[str]], queries: int) -> None:
    latency, job_seconds = http_latency(VARIANTS[name], train, genres, queries)
    print(f"\nTraining job over HTTP ({name}): {job_seconds:.3f} s from executing to successful "
          "(store read, training, model save)")  # fmt: skip
    print(f"\nQuery latency over HTTP ({name}, num=20, {queries} queries, uvicorn 1 worker, "
          "raw keep-alive clients in this process, same 2 cores):")  # fmt: skip
    print(
        f"{'clients':>8} {'p50 ms':>8} {'p99 ms':>8} {'p99 / 20 ms':>12} {'server CPU ms/query':>20}"
    )
    for clients, (p50, p99, cpu) in latency.items():
        print(f"{clients:8d} {p50:8.2f} {p99:8.2f} {p99 / 20:12.2f} {cpu:20.3f}")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def hybrid(name: str, rounds: int) -> None:
    """Server candidates re-ranked on the device against each alone (lerna.sim.hybrid)."""
    from lerna.sdk.recommendations import pool_size
    from lerna.sim.evaluation import DEFAULT_MODEL, prepare
    from lerna.sim.hybrid import device_scores, evaluate_hybrid, server_events
    from lerna.sim.movielens import load as load_movielens

    data = load_movielens()
    prepared = prepare("stratified", data=data)
    pool = pool_size(10)
    predicted, _ = run_cco(name, server_events(prepared, data), {}, pool)
    index = {item: n for n, item in enumerate(prepared.catalog.item_ids)}
    server = [np.asarray([index[i] for i in predicted[str(u)]]) for u in prepared.users]
    started = time.perf_counter()
    device = device_scores(prepared, rounds=rounds)
    seconds = time.perf_counter() - started
    print(f"\nHybrid (lerna.sim.hybrid; sim's stratified split, its metrics; server = {name}, "
          f"top {pool} re-ranked on device by fuse; device = federated {DEFAULT_MODEL}, "
          f"{rounds} rounds, {seconds:.0f} s):")  # fmt: skip
    print(f"{'ranking':10} {'NDCG@10':>8} {'P@10':>7} {'MAP@10':>7} {'R@10':>7}")
    for row, m in evaluate_hybrid(prepared, device, server, pool).items():
        print(f"{row:10} {m['ndcg@10']:8.4f} {m['precision@10']:7.4f} {m['map@10']:7.4f} "
              f"{m['recall@10']:7.4f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-hybrid", action="store_true")
    parser.add_argument("--hybrid-rounds", type=int, default=8)
    args = parser.parse_args()
    ratings, genres = load()
    train, test = stratified_split(ratings, 0.75, args.seed)
    print(f"MovieLens-100K: {len(ratings)} ratings, train {len(train)}, test {len(test)}, "
          f"seed {args.seed}, k=10\n")  # fmt: skip
    best = "UR rated + like, scored"
    if not args.skip_quality:
        best = quality(args, train, test, genres)
    if not args.skip_http:
        speed(best, train, genres, args.queries)
    if not args.skip_hybrid:
        hybrid(best, args.hybrid_rounds)


if __name__ == "__main__":
    main()
