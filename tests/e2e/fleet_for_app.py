"""Give an app made in the browser an ML task and run a small MovieLens fleet against it.

The browser suite runs this as a child process with the token the dashboard showed once, so the
charts it then checks are filled by real SDK clients going through real federated rounds.
Usage: python fleet_for_app.py URL EMAIL PASSWORD APP_ID TOKEN DEVICES ROUNDS STORAGE
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx

from lerna.cli.demo_job import DEFAULT_MODEL, run_fleet
from lerna.sim import movielens


def create_task(url: str, email: str, password: str, app_id: int, devices: int) -> None:
    data = movielens.load()
    with httpx.Client(base_url=url, timeout=120) as http:
        login = http.post("/api/auth/login", json={"email": email, "password": password})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        extra: dict[str, Any] = {}
        schemas = http.get("/openapi.json").json()["components"]["schemas"]
        if "privacy" in schemas.get("TaskCreate", {}).get("properties", {}):
            # Plain FedAvg keeps this small fleet quick; the privacy modes have their own tests.
            extra["privacy"] = {"mode": "none", "noise_multiplier": 0.0, "epsilon_budget": None}
        task = http.post(
            f"/api/apps/{app_id}/tasks",
            headers=headers,
            json={
                "name": "movies",
                "model_type": DEFAULT_MODEL,
                "cohort_size": devices,
                "min_participants": max(1, devices // 2),
                "selection_seconds": 120,
                "upload_seconds": 300,
                "feature_schema": data.schema().model_dump(mode="json"),
                "catalog": {"items": data.items},
                **extra,
            },
        )
        task.raise_for_status()


def main(argv: list[str]) -> int:
    url, email, password, app_id, token, devices, rounds, storage = argv
    create_task(url, email, password, int(app_id), int(devices))
    result = run_fleet(url, token, int(devices), int(rounds), Path(storage), movielens.load())
    print(f"fleet done: {len(result.rounds)} rounds, {len(result.failures)} failures", flush=True)
    return 0 if len(result.rounds) == int(rounds) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
