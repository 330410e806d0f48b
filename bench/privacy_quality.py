"""Model quality with differential privacy on: NDCG@10 on MovieLens-100K for epsilon in
{1, 4, 8} next to the non-private federated figure (issue 4).

DP-FedAvg as ``lerna.sim.private_evaluation`` runs it (clip each device's update to S, sum with
weight 1, add N(0, (z S)^2), divide by the cohort; every device every round, q = 1), with z
calibrated per target epsilon by the RDP accountant over the rounds; delta = 1e-5 < 1 / users.
Rows: the non-private federated figure of the same model form, clipping without noise, and one
row per epsilon. ``fcf`` runs in its DP-friendly form (``per_user``, dim 16); ``logistic`` too.

    OPENBLAS_NUM_THREADS=1 python bench/privacy_quality.py [--model fcf] [--rounds 3]
        [--clip 0] [--epsilons 1 4 8] [--devices N] [--json out.json]

``--clip 0`` picks S as the median update norm of round 1 measured without noise (a
data-dependent choice that is itself not private). The per-model defaults of S, dim and the
number of rounds were picked by a small sweep on this same data: state that next to figures.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from lerna.core.dp import PrivacyAccountant
from lerna.sim.evaluation import metrics_of, prepare, score_all
from lerna.sim.private_evaluation import DELTA, DP_CLIP, DP_HYPER, calibrate, train_dp


def run(
    kind: str,
    rounds: int,
    clip: float | None,
    epsilons: list[float],
    devices: int | None,
    seed: int,
    extra_hyper: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    prepared = prepare("temporal", devices, seed)
    hyper = {**DP_HYPER.get(kind, {}), **(extra_hyper or {})}
    out: dict[str, Any] = {
        "model": kind,
        "rounds": rounds,
        "devices": len(prepared.users),
        "delta": DELTA,
        "sampling_rate": 1.0,
        "hyper": hyper,
        "rows": {},
    }
    start = time.perf_counter()
    model, personal, norms = train_dp(prepared, kind, rounds, hyper, 0.0, 0.0, seed)
    out["rows"]["federated (no DP)"] = {
        **metrics_of(score_all(model, prepared, personal), prepared),
        "seconds": round(time.perf_counter() - start, 1),
    }
    if clip is None:
        clip = DP_CLIP.get(kind, 1.0)
    elif clip <= 0:
        clip = float(np.median(norms))
    out["clip_norm"] = clip
    out["round1_norm_quantiles"] = [round(float(x), 4) for x in np.quantile(norms, [0.1, 0.5, 0.9])]
    start = time.perf_counter()
    model, personal, _ = train_dp(prepared, kind, rounds, hyper, clip, 0.0, seed)
    out["rows"]["clipped, no noise"] = {
        **metrics_of(score_all(model, prepared, personal), prepared),
        "seconds": round(time.perf_counter() - start, 1),
    }
    for eps in epsilons:
        z = calibrate(eps, rounds, 1.0)
        start = time.perf_counter()
        model, personal, _ = train_dp(prepared, kind, rounds, hyper, clip, z, seed)
        spent = PrivacyAccountant(z, 1.0, DELTA).epsilon(rounds)
        out["rows"][f"DP epsilon={eps:g}"] = {
            **metrics_of(score_all(model, prepared, personal), prepared),
            "z": round(z, 3),
            "epsilon": round(spent, 3),
            "seconds": round(time.perf_counter() - start, 1),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="fcf", choices=sorted(DP_HYPER))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clip", type=float, default=None, help="S (default per model); 0: median")
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 4.0, 8.0])
    parser.add_argument("--devices", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hyper", type=json.loads, default=None, help="JSON object")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    result = run(
        args.model, args.rounds, args.clip, args.epsilons, args.devices, args.seed, args.hyper
    )
    print(
        f"MovieLens-100K temporal, {result['model']} {result['hyper']}, {result['devices']} devices, "
        f"{result['rounds']} rounds, q=1, delta={DELTA:g}, S={result['clip_norm']:.4g} "
        f"(round-1 norms p10/p50/p90 {result['round1_norm_quantiles']})"
    )
    print(f"{'':22}{'ndcg@10':>10}{'prec@10':>10}{'z':>8}{'epsilon':>9}{'seconds':>9}")
    for name, row in result["rows"].items():
        print(
            f"{name:22}{row['ndcg@10']:>10.4f}{row['precision@10']:>10.4f}"
            f"{row.get('z', float('nan')):>8.3g}{row.get('epsilon', float('nan')):>9.3g}{row['seconds']:>9.1f}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
