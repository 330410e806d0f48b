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

Two-server mode runs the real MPC service (`MaskService` on its own migrated SQLite database, in
this process, no HTTP) `--repeat` rounds per scenario and reports medians. Its dropouts take their
seed and never upload: the costliest case, since the MPC then removes each one's mask at close.
The MPC's work while the round runs (handing out seeds, taking the receipts that accepted devices
pass on and adding their masks into the round's running sum) is reported separately, as off the
critical path: it happens while devices arrive, train and upload.

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
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from sqlalchemy.orm import sessionmaker

from lerna.core.dp import clip_l2
from lerna.core.secagg import Quantizer, SecAggClient, SecAggServer, default_degree, two_server
from lerna.core.secagg.messages import RoundConfig, decode_vector
from lerna.core.secagg.messages import encode_vector as _enc
from lerna.core.secagg.tickets import issue_receipt, issue_ticket
from lerna.mpc.db import make_engine as make_mpc_engine
from lerna.mpc.migrate import upgrade as upgrade_mpc
from lerna.mpc.schemas import MaskSumCreate
from lerna.mpc.service import MaskService
from lerna.mpc.settings import MPCSettings

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


def _median(values: list[float]) -> float:
    return float(np.median(values))


def bench_two_server(n: int, d: int, dropout: float, seed: int = 0, repeat: int = 3) -> Result:
    """The real MPC service (`MaskService` on its own SQLite database, migrated) and the FL-API's
    arithmetic, `repeat` rounds on one service; each time is the median over the rounds, each
    ratio the median of the rounds' ratios (both sides measured in the same round, under the
    same machine load).

    - MPC work off the critical path, spread over the round as devices arrive: per device, check
      the ticket and record the seed issue (one SQLite transaction); per accepted device, check
      the FL-API's receipt the device passes on and add its mask into the round's running sum
      in memory (a read-only transaction);
    - MPC answer (critical path): the service's answer to the one mask-sum request (the set
      checked and recorded in one transaction, then the running sum, negated), and apart from it
      the FL-API's decoding of the binary answer;
    - FL-API: the sum of the accepted masked uploads, adding the answer, decoding the mean;
    - plain aggregation: the sum of the accepted float32 uploads and the mean.
    """
    rng = np.random.default_rng(seed)
    quantizer = Quantizer.for_devices(CLIP, n)
    updates = _updates(n, d, seed)
    devices = [f"dev-{i}" for i in range(n)]
    dropped = set(rng.choice(n, int(dropout * n), replace=False).tolist())
    accepted = [dev for i, dev in enumerate(devices) if i not in dropped]
    times: dict[str, list[float]] = {
        k: [] for k in ("issue", "answer", "wire", "flapi", "plain", "from_seeds")
    }
    client_times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = MPCSettings(data_dir=Path(tmp), demo=True, threshold=2)
        engine = make_mpc_engine(settings.db_url)
        upgrade_mpc(engine)
        service = MaskService(settings, sessionmaker(engine, expire_on_commit=False))
        ticket_key = settings.secret("ticket_key")
        for r in range(repeat):
            round_id = f"bench:{r}"
            issue, answer, wire, flapi, plain = Clock(), Clock(), Clock(), Clock(), Clock()
            uploads: list[bytes] = []
            plain_uploads: list[bytes] = []
            for i, dev in enumerate(devices):
                ticket = issue_ticket(ticket_key, dev, round_id, int(time.time()), 3600, d)
                got = issue(lambda t=ticket: service.issue_seed(service.device_claims(t)))
                if i in dropped:
                    continue
                c = Clock()
                clipped, _ = c(clip_l2, updates[i], CLIP)
                q = c(quantizer.quantize, clipped, np.random.default_rng([seed, i]))
                uploads.append(c(lambda q=q, s=got.seed: _enc(two_server.mask_update(s, q, d))))
                client_times.append(c.total)
                plain_uploads.append(clipped.astype("<f4").tobytes())
                # the FL-API accepted the upload; the device passes its receipt on to the MPC
                receipt = issue_receipt(ticket_key, dev, round_id, int(time.time()), 3600)
                issue(lambda r=receipt: service.accept_receipt(service.receipt_claims(r)))

            def fl_api_sum(uploads: list[bytes] = uploads) -> np.ndarray:
                total = np.zeros(d, dtype=np.uint32)
                for blob in uploads:
                    total += np.frombuffer(blob, dtype="<u4")
                return total

            def plain_sum(plain_uploads: list[bytes] = plain_uploads) -> np.ndarray:
                total = np.zeros(d, dtype=np.float64)
                for blob in plain_uploads:
                    total += np.frombuffer(blob, dtype="<f4")
                return total / len(plain_uploads)

            def decode(body: bytes) -> np.ndarray:  # what the FL-API's MPC client does
                return decode_vector(body, d)  # the binary answer (Accept: octet-stream)

            masked_total = flapi(fl_api_sum)
            request = MaskSumCreate(device_ids=accepted, vector_length=d)
            public = answer(service.negated_mask_sum, round_id, request)
            negated = wire(lambda p=public: decode(bytes(p.negated_mask_sum)))

            def unmask(
                masked: np.ndarray = masked_total, negated: np.ndarray = negated
            ) -> np.ndarray:
                return quantizer.dequantize_sum(masked + negated, len(accepted)) / len(accepted)

            mean = flapi(unmask)
            reference = plain(plain_sum)
            assert np.allclose(mean, reference, atol=1e-5), "two-server mean differs from plain"
            # the previous design, for comparison: one PRG expansion per accepted device at close
            master = settings.secret("master_key")
            t0 = time.perf_counter()
            two_server.negated_mask_sum(
                (two_server.device_seed(master, round_id, a) for a in accepted), d
            )
            times["from_seeds"].append(time.perf_counter() - t0)
            for key, clock in (
                ("issue", issue),
                ("answer", answer),
                ("wire", wire),
                ("flapi", flapi),
                ("plain", plain),
            ):
                times[key].append(clock.total)
        engine.dispose()
    m = {k: _median(v) for k, v in times.items()}
    t = {k: np.array(v) for k, v in times.items()}
    critical = t["flapi"] + t["answer"]

    def ratio(work: np.ndarray) -> float:  # per round (same load on both sides), then median
        return float(np.median(work / t["plain"]))

    up = math.ceil(4 * d / 3) + 64  # base64 vector in a JSON body
    return Result(
        mode="two-server",
        n=n,
        d=d,
        dropout=dropout,
        degree=0,
        server_s=m["flapi"],
        client_mean_s=float(np.mean(client_times)),
        client_max_s=float(np.max(client_times)),
        client_up_bytes=float(up),
        client_down_bytes=float(len('{"round_id":"bench:1","device_id":"dev-000","seed":""}') + 44),
        server_state_bytes=0,
        extra={
            "plain_aggregation_s": m["plain"],
            "flapi_s": m["flapi"],
            "mpc_answer_s": m["answer"],
            "mpc_answer_wire_s": m["wire"],
            "mpc_off_path_total_s": m["issue"],
            "mpc_off_path_per_device_ms": m["issue"] / n * 1e3,
            "previous_mpc_answer_s": m["from_seeds"],
            "ratio_critical_path": ratio(critical),
            "ratio_critical_path_with_wire": ratio(critical + t["wire"]),
            "ratio_total_work": ratio(critical + t["wire"] + t["issue"]),
            "ratio_previous_critical_path": ratio(t["flapi"] + t["from_seeds"]),
        },
    )


def _print_two_server(r: Result) -> None:
    e = r.extra
    print(
        f"{'':10s} n={r.n:4d} d={r.d} drop={r.dropout:4.0%}"
        f" critical path at close: FL-API {e['flapi_s'] * 1e3:.1f} ms + MPC answer"
        f" {e['mpc_answer_s'] * 1e3:.1f} ms vs plain {e['plain_aggregation_s'] * 1e3:.1f} ms"
        f" = {e['ratio_critical_path']:.2f}x"
        f" (+ decoding the binary answer {e['mpc_answer_wire_s'] * 1e3:.1f} ms:"
        f" {e['ratio_critical_path_with_wire']:.2f}x;"
        f" previous design, a PRG per accepted device at close:"
        f" {e['ratio_previous_critical_path']:.2f}x)."
        f" Total work incl. the MPC's seed issues and receipts off the critical path"
        f" ({e['mpc_off_path_per_device_ms']:.2f} ms/device): {e['ratio_total_work']:.1f}x",
        flush=True,
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
    parser.add_argument(
        "--repeat", type=int, default=3, help="two-server rounds per scenario (medians reported)"
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    results: list[Result] = []
    for mode in args.modes:
        for n in args.n:
            for dropout in args.dropouts:
                if mode == "secagg+":
                    results.append(bench_secagg_plus(n, args.d, dropout))
                    _print(results[-1])
                else:
                    results.append(bench_two_server(n, args.d, dropout, repeat=args.repeat))
                    _print(results[-1])
                    _print_two_server(results[-1])
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
