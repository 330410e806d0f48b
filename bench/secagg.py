"""Secure-aggregation benchmark: our SecAgg+ and two-server mode, time and bytes per round.

Run by hand (it takes minutes, not seconds):

    .venv/bin/python bench/secagg.py                       # n in {100, 500}, d = 100k
    .venv/bin/python bench/secagg.py --n 100 --dropouts 0.1 --json out.json

Everything runs in one process, no HTTP: "client" time is the mean (and max) per device of its own
work (key generation, sharing, decrypting, clipping, quantising, masking); "server" time is the
FL-API's protocol work (checking and routing messages, adding masked inputs, reconstructing
secrets, removing masks, decoding). Bytes are the JSON bodies the messages would travel as.
Dropouts happen after key sharing, before the masked input: the costliest case for the server,
which must rebuild each dropped device's key and remove its pairwise masks (Bonawitz et al.'s
Table 4 reports 143 s of server time for n = 500, d = 100k, 30% dropout).

SecAgg+ is provisioned for the scenario's dropout rate (at least 10%): the graph degree is the
least k for which reconstruction fails with probability <= 2^-20 (`default_degree`).

With `--flower`, the same scenarios (same n, d, dropouts, graph degree and share threshold) also
run through Flower 1.42's own SecAgg+ workflow and client mod, in a virtual environment this
script creates (default ~/.cache/lerna-bench/flwr-1.42; `pip install flwr==1.42.0`, never in the
project's environment), driven by bench/flower_secaggplus.py; the ratios ours / Flower follow.
Flower is slow at large n (minutes per round), so `--flower-n` defaults to 100 only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

import numpy as np

from lerna.core.dp import clip_l2
from lerna.core.secagg import Quantizer, SecAggClient, SecAggServer, default_degree, two_server
from lerna.core.secagg.messages import RoundConfig
from lerna.core.secagg.messages import encode_vector as _enc

T = TypeVar("T")
CLIP = 1.0
FLOWER_PIN = "flwr==1.42.0"
HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Result:
    mode: str
    n: int
    d: int
    dropout: float
    degree: int
    server_s: float
    client_mean_s: float
    client_max_s: float
    client_up_bytes: float
    client_down_bytes: float
    server_state_bytes: int
    extra: dict[str, float]


class Clock:
    def __init__(self) -> None:
        self.total = 0.0

    def __call__(self, fn: Callable[..., T], *args: object) -> T:
        t0 = time.perf_counter()
        out = fn(*args)
        self.total += time.perf_counter() - t0
        return out


def _updates(n: int, d: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.01, d) for _ in range(n)]


def _jsize(msg: object) -> int:
    return len(msg.model_dump_json())  # type: ignore[attr-defined]


def bench_secagg_plus(n: int, d: int, dropout: float, seed: int = 0) -> Result:
    rng = np.random.default_rng(seed)
    k = default_degree(n, max(dropout, 0.1))
    config = RoundConfig(
        round_id="bench:1",
        parties=list(range(1, n + 1)),
        threshold=n // 2 + 1,
        degree=k,
        share_threshold=k // 2 + 1,
        graph_seed=secrets.token_bytes(32),
        vector_length=d,
    )
    quantizer = Quantizer.for_devices(CLIP, n)
    updates = _updates(n, d, seed)
    dropped = set(rng.choice(config.parties, int(dropout * n), replace=False).tolist())
    server_clock = Clock()
    client_clocks = {p: Clock() for p in config.parties}
    up = dict.fromkeys(config.parties, 0)
    down = dict.fromkeys(config.parties, 0)
    clients = {p: SecAggClient(p) for p in config.parties}

    server = server_clock(SecAggServer.start, config)
    for p, c in clients.items():
        msg = client_clocks[p](c.advertise_keys, config)
        down[p] += _jsize(config)
        up[p] += _jsize(msg)
        server_clock(server.receive_keys, msg)
    server_clock(server.close_advertise_keys)
    for p, c in clients.items():
        directory = server_clock(server.key_directory, p)
        msg = client_clocks[p](c.share_keys, directory)
        down[p] += _jsize(directory)
        up[p] += _jsize(msg)
        server_clock(server.receive_shares, msg)
    server_clock(server.close_share_keys)
    state_bytes = len(server.to_json())
    quantised: dict[int, np.ndarray] = {}
    for p, c in clients.items():
        if p in dropped:
            continue
        inbox = server_clock(server.shares_inbox, p)

        def client_stage(c: SecAggClient = c, p: int = p, inbox: object = inbox) -> object:
            clipped, _ = clip_l2(updates[p - 1], CLIP)
            quantised[p] = quantizer.quantize(clipped, np.random.default_rng([seed, p]))
            return c.masked_input(inbox, quantised[p])  # type: ignore[arg-type]

        msg = client_clocks[p](client_stage)
        down[p] += _jsize(inbox)
        up[p] += _jsize(msg)
        server_clock(server.receive_masked_input, msg)
    request = server_clock(server.close_masked_input)
    for p in request.survivors:
        msg = client_clocks[p](clients[p].unmask, request)
        down[p] += _jsize(request)
        up[p] += _jsize(msg)
        server_clock(server.receive_unmask, msg)
    total = server_clock(server.finalize)
    server_clock(quantizer.dequantize_sum, total, len(request.survivors))
    expected = np.zeros(d, dtype=np.uint32)
    for p in request.survivors:
        expected += quantised[p]
    assert np.array_equal(total, expected), "unmasked sum differs from the plain sum"
    times = [client_clocks[p].total for p in config.parties]
    t0 = time.perf_counter()
    SecAggServer.from_json(server.to_json())
    return Result(
        mode="secagg+",
        n=n,
        d=d,
        dropout=dropout,
        degree=k,
        server_s=server_clock.total,
        client_mean_s=float(np.mean(times)),
        client_max_s=float(np.max(times)),
        client_up_bytes=float(np.mean(list(up.values()))),
        client_down_bytes=float(np.mean(list(down.values()))),
        server_state_bytes=state_bytes,
        extra={"state_roundtrip_s": time.perf_counter() - t0},
    )


def bench_two_server(n: int, d: int, dropout: float, seed: int = 0) -> Result:
    rng = np.random.default_rng(seed)
    master = secrets.token_bytes(32)
    quantizer = Quantizer.for_devices(CLIP, n)
    updates = _updates(n, d, seed)
    devices = [f"dev-{i}" for i in range(n)]
    dropped = set(rng.choice(n, int(dropout * n), replace=False).tolist())
    mpc, flapi, plain = Clock(), Clock(), Clock()
    client_times: list[float] = []
    uploads: list[bytes] = []
    plain_uploads: list[bytes] = []
    seeds: dict[str, bytes] = {}
    for i, dev in enumerate(devices):
        seeds[dev] = mpc(two_server.device_seed, master, "bench:1", dev)
        if i in dropped:
            continue
        c = Clock()
        clipped, _ = c(clip_l2, updates[i], CLIP)
        q = c(quantizer.quantize, clipped, np.random.default_rng([seed, i]))
        uploads.append(c(lambda q=q, s=seeds[dev]: _enc(two_server.mask_update(s, q, d))))
        client_times.append(c.total)
        plain_uploads.append(clipped.astype("<f4").tobytes())
    accepted = [dev for i, dev in enumerate(devices) if i not in dropped]

    def fl_api_sum() -> np.ndarray:
        total = np.zeros(d, dtype=np.uint32)
        for blob in uploads:
            total += np.frombuffer(blob, dtype="<u4")
        return total

    def plain_sum() -> np.ndarray:
        total = np.zeros(d, dtype=np.float64)
        for blob in plain_uploads:
            total += np.frombuffer(blob, dtype="<f4")
        return total / len(plain_uploads)

    masked_total = flapi(fl_api_sum)
    negated = mpc(two_server.negated_mask_sum, (seeds[a] for a in accepted), d)
    mean = flapi(
        lambda: quantizer.dequantize_sum(masked_total + negated, len(accepted)) / len(accepted)
    )
    reference = plain(plain_sum)
    assert np.allclose(mean, reference, atol=1e-5), "two-server mean differs from the plain mean"
    up = math.ceil(4 * d / 3) + 64  # base64 vector in a JSON body
    return Result(
        mode="two-server",
        n=n,
        d=d,
        dropout=dropout,
        degree=0,
        server_s=flapi.total,
        client_mean_s=float(np.mean(client_times)),
        client_max_s=float(np.max(client_times)),
        client_up_bytes=float(up),
        client_down_bytes=float(len('{"round_id":"bench:1","device_id":"dev-000","seed":""}') + 44),
        server_state_bytes=0,
        extra={
            "mpc_s": mpc.total,
            "plain_aggregation_s": plain.total,
            "ratio_flapi_vs_plain": flapi.total / plain.total,
            "ratio_flapi_plus_mpc_vs_plain": (flapi.total + mpc.total) / plain.total,
        },
    )


def flower_python(venv: str) -> str:
    """The Flower venv's interpreter, creating the venv and installing Flower on first use."""
    python = os.path.join(venv, "bin", "python")
    probe = [python, "-c", "import flwr, sys; sys.exit(flwr.__version__ != '1.42.0')"]
    if os.path.exists(python) and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"creating {venv} with {FLOWER_PIN} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", FLOWER_PIN], check=True)
    return python


def bench_flower(python: str, n: int, d: int, dropout: float) -> Result:
    k = default_degree(n, max(dropout, 0.1))
    spec = [{"n": n, "d": d, "dropout": dropout, "degree": k, "share_threshold": k // 2 + 1}]
    out = subprocess.run(
        [python, os.path.join(HERE, "flower_secaggplus.py"), json.dumps(spec)],
        check=True,
        capture_output=True,
        text=True,
    )
    row = json.loads(out.stdout.strip().splitlines()[-1])
    return Result(
        mode="flower",
        n=n,
        d=d,
        dropout=dropout,
        degree=k,
        server_s=row["server_s"],
        client_mean_s=row["client_mean_s"],
        client_max_s=row["client_max_s"],
        client_up_bytes=row["client_up_bytes"],
        client_down_bytes=row["client_down_bytes"],
        server_state_bytes=0,
        extra={"max_abs_error": row["max_abs_error_vs_plain_mean"]},
    )


def _print(r: Result) -> None:
    extra = " ".join(f"{k}={v:.3g}" for k, v in r.extra.items())
    print(
        f"{r.mode:10s} n={r.n:4d} d={r.d} drop={r.dropout:4.0%} k={r.degree:3d} "
        f"server={r.server_s:7.2f}s client mean={r.client_mean_s * 1e3:7.1f}ms "
        f"max={r.client_max_s * 1e3:7.1f}ms up={r.client_up_bytes / 1e3:7.1f}kB "
        f"down={r.client_down_bytes / 1e3:7.1f}kB state={r.server_state_bytes / 1e6:6.1f}MB "
        f"{extra}",
        flush=True,
    )


def _print_ratio(ours: Result, flower: Result) -> None:
    ours_round = ours.server_s + ours.client_max_s
    flower_round = flower.server_s + flower.client_max_s
    print(
        f"{'ratio':10s} n={ours.n:4d} d={ours.d} drop={ours.dropout:4.0%} ours/flower: "
        f"server={ours.server_s / flower.server_s:.3f} "
        f"client mean={ours.client_mean_s / flower.client_mean_s:.3f} "
        f"round (server + slowest client)={ours_round / flower_round:.3f} "
        f"upload={ours.client_up_bytes / flower.client_up_bytes:.3f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--d", type=int, default=100_000)
    parser.add_argument("--dropouts", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    parser.add_argument("--modes", nargs="+", default=["two-server", "secagg+"])
    parser.add_argument("--flower", action="store_true", help="also run Flower 1.42's SecAgg+")
    parser.add_argument("--flower-n", type=int, nargs="+", default=[100])
    parser.add_argument(
        "--flower-venv", default=os.path.expanduser("~/.cache/lerna-bench/flwr-1.42")
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    results: list[Result] = []
    for mode in args.modes:
        for n in args.n:
            for dropout in args.dropouts:
                fn = bench_secagg_plus if mode == "secagg+" else bench_two_server
                results.append(fn(n, args.d, dropout))
                _print(results[-1])
    if args.flower:
        python = flower_python(args.flower_venv)
        for n in args.flower_n:
            for dropout in args.dropouts:
                flower = bench_flower(python, n, args.d, dropout)
                results.append(flower)
                _print(flower)
                ours = [
                    r for r in results if r.mode == "secagg+" and (r.n, r.dropout) == (n, dropout)
                ]
                if ours:
                    _print_ratio(ours[0], flower)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([asdict(r) for r in results], fh, indent=2)


if __name__ == "__main__":
    main()
