"""``lerna demo``: the whole product on one laptop, end to end, through the real protocol."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from lerna.core.models import MODEL_TYPES
from lerna.sim import movielens
from lerna.sim.fleet import REPORT_METRICS, Fleet, FleetConfig, FleetResult

DEMO_EMAIL = "demo@lerna.dev"
DEMO_PASSWORD = "lerna-demo-password"  # demo only: the server it logs into listens on loopback
DEFAULT_MODEL = "fcf" if "fcf" in MODEL_TYPES else "logistic"


def privacy_config(
    mode: str, devices: int, dropout: float, noise_multiplier: float
) -> dict[str, Any]:
    """The demo's privacy section: secure aggregation by default; DP noise when asked for.

    DP costs accuracy (NDCG@10 about 0.12 at epsilon 8 against 0.16 without, docs/privacy.md),
    so it is off unless ``--noise-multiplier`` is given; devices then train the model's
    per-user form, and the demo uses its clip norm and size."""
    threshold = max(2, devices // 2)
    return {
        "mode": mode,
        "threshold": threshold,
        "clip_norm": 100.0,
        "noise_multiplier": noise_multiplier,
        "epsilon_budget": None,
        "expected_dropout": min(0.45, dropout + 0.05),
    }


def centralized(model: str, devices: int, data: movielens.MovieLens) -> dict[str, float]:
    """The same model trained on all devices' data in one place: the federated upper bound."""
    from lerna.sim.evaluation import metrics_of, prepare, score_all, train_centralized

    prepared = prepare(
        "temporal", devices=None if devices >= len(data.user_ids()) else devices, data=data
    )
    return metrics_of(score_all(train_centralized(prepared, model), prepared), prepared)


def privacy_report(url: str, ids: dict[str, Any], result: FleetResult) -> dict[str, Any]:
    """What the app spent: mode, threshold, (epsilon, delta) from the server's accountant, dropouts."""
    with httpx.Client(base_url=url, timeout=60) as http:
        login = http.post("/api/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        task = http.get(
            f"/api/apps/{ids['app']['id']}/tasks/{ids['task']['id']}", headers=headers
        ).json()
    spent = task.get("privacy_spent") or {}
    return {
        "mode": task["privacy"]["mode"],
        "threshold": task["privacy"]["threshold"],
        "noise_multiplier": task["privacy"]["noise_multiplier"],
        "epsilon": spent.get("epsilon"),
        "delta": spent.get("delta"),
        "dropouts": sum(r.dropouts for r in result.rounds),
    }


def provision(
    url: str,
    cohort: int,
    model: str,
    data: movielens.MovieLens,
    privacy: dict[str, Any],
    hyper: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Create (or reuse) the demo customer, then a fresh app and ML task for this run."""
    with httpx.Client(base_url=url, timeout=60) as http:
        http.post(
            "/api/auth/register",
            json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD, "name": "Demo"},
        )
        login = http.post("/api/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        app = http.post(
            "/api/apps",
            json={"name": f"MovieLens demo {time.strftime('%H:%M:%S')}"},
            headers=headers,
        )
        app.raise_for_status()
        task = http.post(
            f"/api/apps/{app.json()['id']}/tasks",
            json={
                "name": "movies",
                "model_type": model,
                "hyper": hyper or {},
                "cohort_size": cohort,
                "min_participants": max(2, cohort // 2) if cohort > 1 else 1,
                "privacy": privacy,
                "stage_seconds": 120,
                "selection_seconds": 600,
                "upload_seconds": 900,
                "feature_schema": data.schema().model_dump(mode="json"),
                "catalog": {"items": data.items},
            },
            headers=headers,
        )
        task.raise_for_status()
        return {"app": app.json(), "task": task.json()}


def build_report(result: FleetResult, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "dataset": movielens.NAME,
        "devices": result.devices,
        "rounds": [r.as_dict() for r in result.rounds],
        "final": {name: {k: round(v, 5) for k, v in m.items()} for name, m in result.final.items()},
        "failures": result.failures[:20],
        "timings": {k: round(v, 1) for k, v in result.timings.items()},
        **extra,
    }


def print_report(console: Console, report: dict[str, Any]) -> None:
    rounds = Table(title="Federated rounds (metrics on each device's held-out data)")
    for col in (
        "round",
        "version",
        "participants",
        "dropouts",
        "seconds",
        "ndcg@10",
        "precision@10",
    ):
        rounds.add_column(col, justify="right")
    for r in report["rounds"]:
        rounds.add_row(
            str(r["round"]), str(r["version"]), str(r["participants"]), str(r["dropouts"]),
            f"{r['seconds']:.1f}", f"{r['metrics']['ndcg@10']:.4f}", f"{r['metrics']['precision@10']:.4f}",
        )  # fmt: skip
    console.print(rounds)
    privacy = report.get("privacy")
    if privacy:
        eps = "off (no DP noise)" if privacy["epsilon"] is None else f"{privacy['epsilon']:.3g}"
        console.print(
            f"Privacy: {privacy['mode']}, threshold t={privacy['threshold']}, epsilon {eps}, "
            f"delta {privacy['delta']:.0e}, dropouts {privacy['dropouts']}"
        )
    final = Table(title="Final model against baselines")
    final.add_column("model")
    for metric in REPORT_METRICS:
        final.add_column(metric, justify="right")
    for name, metrics in report["final"].items():
        final.add_row(name, *(f"{metrics.get(m, 0.0):.4f}" for m in REPORT_METRICS))
    console.print(final)


def model_hyper(model: str, devices: int, cohort: int, private: bool) -> dict[str, Any]:
    """fcf with a sampled cohort under DP uploads changes of each user's contribution too (outside
    DP it does so by default), so the sums keep every user's latest terms (docs/models.md)."""
    return {"differential": True} if model == "fcf" and cohort < devices and private else {}


def run_fleet(
    url: str,
    token: str,
    devices: int,
    rounds: int,
    storage: Path,
    data: movielens.MovieLens,
    dropout: float = 0.0,
    cohort: int | None = None,
) -> FleetResult:
    config = FleetConfig(url, token, devices, rounds, storage, dropout=dropout, cohort=cohort)
    fleet = Fleet(config, data)
    try:
        return fleet.run()
    finally:
        fleet.close()


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def new_run_dir(data_dir: Path) -> Path:
    return (
        data_dir / "demo-devices" / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    )


DEFAULT_ROUNDS = 3


def extras(data: movielens.MovieLens, devices: int, rounds: int, model: str) -> dict[str, Any]:
    return {"model": model, "rounds_requested": rounds, "items": len(data.items)}
