"""Recommendation quality on MovieLens-100K: federated vs. centralized vs. baselines.

Prints one table per protocol and checks the targets of issue 3:
  federated >= 95% of centralized NDCG@10; >= 1.3x popularity NDCG@10 on the temporal
  protocol; above SAR's published figures on the Microsoft protocol (BPR's as a stretch).

    OPENBLAS_NUM_THREADS=1 python bench/quality.py [--rounds 8] [--devices N] [--json out.json]

With ``--sweep-cohorts`` it prints instead the federated NDCG@10 per cohort size and round
count (sampled cohorts, docs/models.md):

    OPENBLAS_NUM_THREADS=1 python bench/quality.py --sweep-cohorts 943,200,100,50 \
        --sweep-rounds 3,8,15 [--hyper '{"differential": false}'] [--dropout 0.1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from lerna.sim.evaluation import (
    DEFAULT_MODEL,
    DEFAULT_ROUNDS,
    evaluate,
    metrics_of,
    prepare,
    score_all,
    train_federated,
)
from lerna.sim.movielens import MovieLens, load

PUBLISHED = {  # Microsoft Recommenders, MovieLens-100K, k=10
    "SAR (published)": {"ndcg@10": 0.382, "precision@10": 0.331, "map@10": 0.111},
    "BPR (published)": {"ndcg@10": 0.442, "precision@10": 0.388, "map@10": 0.132},
}
COLUMNS = ("ndcg@10", "precision@10", "recall@10", "map@10", "seconds")


def table(title: str, rows: dict[str, dict[str, float]]) -> str:
    lines = [title, f"{'':18}" + "".join(f"{c:>14}" for c in COLUMNS)]
    for name, figures in rows.items():
        cells = "".join(f"{figures[c]:>14.4f}" if c in figures else f"{'-':>14}" for c in COLUMNS)
        lines.append(f"{name:18}{cells}")
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def sweep(args: argparse.Namespace, data: MovieLens) -> dict[str, Any]:
    """Federated NDCG@10 (temporal protocol) for each cohort size x round count."""
    prepared = prepare("temporal", args.devices, args.seed, data)
    fleet = len(prepared.users)
    rows: dict[str, Any] = {}
    print(f"federated NDCG@10, temporal protocol, {fleet} devices, hyper {args.hyper or {}}")
    print(f"{'cohort':>8}" + "".join(f"{f'{r} rounds':>12}" for r in args.sweep_rounds))
    for cohort in args.sweep_cohorts:
        row = {}
        for rounds in args.sweep_rounds:
            model, personal = train_federated(
                prepared, args.model, rounds, args.hyper, cohort, args.seed, dropout=args.dropout
            )
            row[rounds] = metrics_of(score_all(model, prepared, personal), prepared)["ndcg@10"]
        rows[str(cohort)] = row
        print(f"{min(cohort, fleet):>8}" + "".join(f"{v:>12.4f}" for v in row.values()), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--devices", type=int, default=None)
    parser.add_argument("--cohort", type=int, default=None)
    parser.add_argument("--hyper", type=json.loads, default=None, help="JSON object")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--sweep-cohorts", type=_ints, default=None, help="e.g. 943,200,50")
    parser.add_argument("--sweep-rounds", type=_ints, default=[3, 8, 15])
    parser.add_argument("--dropout", type=float, default=0.0, help="sweep: uploads lost")
    args = parser.parse_args()
    data = load()
    if args.sweep_cohorts:
        figures = sweep(args, data)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"args": vars(args), "sweep": figures}, fh, indent=2)
        return 0
    results: dict[str, dict[str, dict[str, float]]] = {}
    checks: list[tuple[str, bool]] = []
    for protocol in ("temporal", "stratified"):
        start = time.perf_counter()
        final = evaluate(
            protocol,
            args.model,
            args.rounds,
            args.devices,
            args.seed,
            hyper=args.hyper,
            cohort=args.cohort,
            data=data,
        )
        results[protocol] = final
        rows = dict(final)
        if protocol == "stratified":
            rows.update(PUBLISHED)
        print(table(f"\n{protocol} protocol ({time.perf_counter() - start:.0f} s)", rows))
        fed, cen, pop = (final[k]["ndcg@10"] for k in ("federated", "centralized", "popularity"))
        checks.append(
            (f"{protocol}: federated >= 95% of centralized ({fed / cen:.1%})", fed >= 0.95 * cen)
        )
        if protocol == "temporal":
            checks.append(
                (f"temporal: federated >= 1.3x popularity ({fed / pop:.2f}x)", fed >= 1.3 * pop)
            )
        else:
            for ref in PUBLISHED:
                ok = all(final["federated"][m] > v for m, v in PUBLISHED[ref].items())
                stretch = " (stretch goal)" if ref.startswith("BPR") else ""
                checks.append((f"stratified: federated above {ref} on NDCG, P, MAP{stretch}", ok))
    print()
    for text, ok in checks:
        print(f"[{'ok' if ok else 'MISS'}] {text}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "final": results, "checks": dict(checks)}, fh, indent=2)
    return 0 if all(ok for text, ok in checks if "stretch" not in text) else 1


if __name__ == "__main__":
    sys.exit(main())
