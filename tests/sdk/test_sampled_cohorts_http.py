"""fcf with sampled cohorts over real HTTP rounds: each round hears from a third of the devices,
yet the model learns from everyone, because each device uploads the change of its own
contribution (kept in its personal state) and the sums keep every user's latest terms. Plain
uploads and SecAgg+ without noise; SQLite only (the round arithmetic is the same on PostgreSQL,
which the other round tests cover)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers import ApiClient
from tests.privacy.test_dp_rounds import CATALOG, SCHEMA, _clients, _ndcg, _wait_for_version

DEVICES, COHORT, ROUNDS = 12, 4, 6
SECURE = {
    "mode": "secagg+",
    "threshold": 3,
    "clip_norm": 100.0,
    "noise_multiplier": 0.0,
    "epsilon_budget": None,
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lerna.db'}"


@pytest.mark.parametrize("privacy", [None, SECURE], ids=["plain", "secagg+"])
def test_sampled_cohorts_learn_from_the_whole_fleet(
    api: ApiClient, tmp_path: Path, privacy: dict[str, Any] | None
) -> None:
    config: dict[str, Any] = {
        "model_type": "fcf",
        "hyper": {"dim": 4},
        "feature_schema": SCHEMA,
        "catalog": {"items": CATALOG},
        "cohort_size": COHORT,
        "min_participants": COHORT,
        "stage_seconds": 30,
    }
    if privacy is not None:
        config["privacy"] = privacy
    headers, app, task = api.setup_task(**config)
    clients = _clients(api, app["token"], tmp_path, DEVICES)
    before = _ndcg(clients)
    took_part: set[int] = set()
    for number in range(1, ROUNDS + 1):
        order = np.random.default_rng(number).permutation(DEVICES)  # who checks in first
        outcomes = {int(i): clients[i].round_step() for i in order}
        deadline = time.monotonic() + 60
        while any(o.status == "in_progress" for o in outcomes.values()):
            assert time.monotonic() < deadline, "a round did not finish"
            time.sleep(0.02)
            outcomes = {
                i: o if o.status != "in_progress" else clients[i].round_step()
                for i, o in outcomes.items()
            }
        took_part |= {i for i, o in outcomes.items() if o.status in ("uploaded", "completed")}
        version = _wait_for_version(api, headers, app, task, number)
        assert version["participants"] == COHORT
    assert len(took_part) > COHORT, "the rounds heard from different samples"
    sent = [bool(np.any(c.model.personal_state()["sent"])) for c in clients]
    assert sum(sent) == len(took_part), "each device that uploaded remembers what it sent"
    assert _ndcg(clients) > before + 0.15
