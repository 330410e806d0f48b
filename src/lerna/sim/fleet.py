"""The fleet simulator: many real SDK clients, each with its own storage directory and
credential, driven over HTTP against a running FL-API.

Each MovieLens user becomes one device that holds only its own ratings (a rating of 4 or 5
is a success, anything lower a failure; the timestamp gives the context). The devices keep
their newest 20% as held-out data and report metrics measured there, so every figure in the
report comes from data the model never trained on.
"""

from __future__ import annotations

import resource
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lerna.core.metrics import ranking_metrics, top_k
from lerna.sdk import LernaClient, RoundOutcome, TrainingConditions
from lerna.sdk.errors import LernaSDKError
from lerna.sdk.trainer import split_events
from lerna.sim.movielens import MovieLens, timestamp_to_datetime

REPORT_METRICS = ("ndcg@10", "precision@10", "recall@10", "map@10")
POSITIVE = 4.0


@dataclass
class FleetConfig:
    server_url: str
    app_token: str
    devices: int
    rounds: int
    storage: Path
    workers: int = 8
    dropout: float = 0.0
    seed: int = 0
    round_timeout: float = 600.0
    task: str | None = None
    cohort: int | None = None  # devices sampled per round (None: every device, every round)
    # devices that measure each new version; the final version is measured by all of them
    eval_sample: int = 200


@dataclass
class RoundReport:
    round: int
    version: int
    participants: int
    dropouts: int
    seconds: float
    metrics: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "version": self.version,
            "participants": self.participants,
            "dropouts": self.dropouts,
            "seconds": round(self.seconds, 3),
            "metrics": {k: round(v, 5) for k, v in self.metrics.items()},
        }


@dataclass
class FleetResult:
    rounds: list[RoundReport] = field(default_factory=list)
    final: dict[str, dict[str, float]] = field(default_factory=dict)
    devices: int = 0
    failures: list[str] = field(default_factory=list)
    # wall seconds per phase: where a run's time went (enrolment, rounds, measuring)
    timings: dict[str, float] = field(default_factory=dict)


def _raise_fd_limit() -> None:
    """Each device keeps a SQLite file open; a fleet of thousands needs more descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def fleet_users(data: MovieLens, devices: int, seed: int = 0) -> list[int]:
    """Which MovieLens users become devices: all of them, or the same random subset that the
    evaluation harness (``lerna.sim.evaluation.prepare``) draws, so baselines line up."""
    users = data.user_ids()
    if devices >= len(users):
        return users
    pick = np.random.default_rng(seed).choice(len(users), size=devices, replace=False)
    return [users[i] for i in sorted(pick)]


def _in_progress(outcome: RoundOutcome | str) -> bool:
    return isinstance(outcome, RoundOutcome) and outcome.status == "in_progress"


def _reported(outcomes: list[RoundOutcome | str], version: int) -> list[dict[str, float]]:
    """Held-out metrics the devices reported for ``version`` with their round outcome."""
    return [
        o.metrics
        for o in outcomes
        if isinstance(o, RoundOutcome) and o.version == version and o.metrics
    ]


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return dict.fromkeys(REPORT_METRICS, 0.0)
    return {k: float(np.mean([r.get(k, 0.0) for r in rows])) for k in REPORT_METRICS}


class Fleet:
    def __init__(
        self, config: FleetConfig, data: MovieLens, progress: Progress | None = None
    ) -> None:
        _raise_fd_limit()
        self.config = config
        self.data = data
        self.users = fleet_users(data, config.devices, config.seed)
        self.http = httpx.Client(
            base_url=config.server_url,
            timeout=120.0,
            limits=httpx.Limits(
                max_connections=config.workers * 2, max_keepalive_connections=config.workers * 2
            ),
        )
        self.clients: list[LernaClient] = []
        self.progress = progress or Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        )
        self.rng = np.random.default_rng(config.seed)
        self._dropping: set[int] = set()
        self._sampled = False
        self._dropped: set[int] = set()

    def _parallel(
        self, label: str, fn: Callable[[int], Any], which: list[int] | None = None
    ) -> list[Any]:
        """fn(i) for every device (or those in ``which``), in parallel, with a progress bar."""
        indices = list(range(len(self.users))) if which is None else which
        bar = self.progress.add_task(label, total=len(indices))
        with ThreadPoolExecutor(self.config.workers) as pool:
            futures = [pool.submit(fn, i) for i in indices]
            results = []
            for fut in futures:
                results.append(fut.result())
                self.progress.advance(bar)
        self.progress.remove_task(bar)
        return results

    def setup(self) -> None:
        """Enroll every device and give it its user's history (kept only in its local store)."""
        if self.config.storage.exists():
            shutil.rmtree(self.config.storage)
        r = self.data.ratings

        def make(i: int) -> LernaClient:
            user = self.users[i]
            client = LernaClient(
                self.config.app_token,
                self.config.storage / f"device-{user}",
                http=self.http,
                task=self.config.task,
                device_uid=f"ml-user-{user}",
                conditions=TrainingConditions(holdout_fraction=0.2, relevance_min_value=POSITIVE),
                seed=self.config.seed * 100_003 + user,
            )
            client.start()
            lo, hi = np.searchsorted(r.users, [user, user + 1])
            client.record_history(
                [
                    # rating a movie means the user chose to watch it (the outcome the model
                    # learns); the rating is the outcome's value, and only 4 or 5 counts as a
                    # hit when the device measures accuracy on its held-out ratings
                    (
                        timestamp_to_datetime(int(r.timestamps[j])),
                        str(r.items[j]),
                        True,
                        float(r.ratings[j]),
                    )
                    for j in range(lo, hi)
                ]
            )
            return client

        self.clients = self._parallel("enrolling devices", make)

    def _train(self, i: int) -> RoundOutcome | str:
        """One step of device i in the current round (plain rounds finish in one step)."""
        client = self.clients[i]
        try:
            if i in self._dropping:
                if i not in self._dropped:
                    self._dropped.add(i)
                    client.api.checkin(
                        client.task.id if client.task else 0
                    )  # selected, then vanishes
                return "dropped"
            return client.round_step()
        except LernaSDKError as exc:
            return f"device {self.users[i]}: {exc}"

    def _run_round(self, number: int, cohort: list[int]) -> list[RoundOutcome | str]:
        """Step the cohort's devices until each is done with the round (secure: a step per stage)."""
        outcomes: dict[int, RoundOutcome | str] = dict.fromkeys(cohort, RoundOutcome("in_progress"))
        pending = list(cohort)
        passes = 0
        deadline = time.monotonic() + self.config.round_timeout
        while pending and time.monotonic() < deadline:
            passes += 1
            label = f"round {number}/{self.config.rounds}"
            results = self._parallel(
                label if passes == 1 else f"{label}, stage pass {passes}", self._train, pending
            )
            for i, outcome in zip(pending, results, strict=True):
                outcomes[i] = outcome
            pending = [i for i in pending if _in_progress(outcomes[i])]
            if pending:
                time.sleep(0.05)
        return list(outcomes.values())

    def _evaluate(self, i: int) -> dict[str, float] | None:
        client = self.clients[i]
        client.sync()
        return client.evaluate()

    def _wait_for_version(self, after: int) -> int:
        deadline = time.monotonic() + self.config.round_timeout
        client = self.clients[0]
        assert client.task is not None
        while time.monotonic() < deadline:
            current = next(t for t in client.api.tasks() if t.id == client.task.id).current_version
            if current > after:
                return current
            time.sleep(0.2)
        raise TimeoutError(f"no new model version within {self.config.round_timeout}s")

    def run(self) -> FleetResult:
        result = FleetResult(devices=len(self.users))
        n = len(self.users)
        everyone = list(range(n))
        sample = everyone if n <= self.config.eval_sample else self._draw(self.config.eval_sample)
        # with a sampled cohort, the devices' own reports would cover only that cohort
        self._sampled = bool(self.config.cohort and self.config.cohort < n)
        clock = time.monotonic()
        with self.progress:
            self.setup()
            result.timings["setup"] = time.monotonic() - clock
            for number in range(1, self.config.rounds + 1):
                started = time.monotonic()
                base = result.rounds[-1].version if result.rounds else self.clients[0].version
                cohort = (
                    everyone
                    if not self.config.cohort or self.config.cohort >= n
                    else self._draw(self.config.cohort)
                )
                draws = self.rng.random(len(cohort))
                self._dropping = {cohort[k] for k in np.flatnonzero(draws < self.config.dropout)}
                self._dropped = set()
                outcomes = self._run_round(number, cohort)
                result.failures += [o for o in outcomes if isinstance(o, str) and o != "dropped"]
                uploaded = sum(
                    1
                    for o in outcomes
                    if isinstance(o, RoundOutcome) and o.status in ("uploaded", "completed")
                )
                dropped = sum(
                    1
                    for o in outcomes
                    if o == "dropped" or (isinstance(o, RoundOutcome) and o.status == "dropped")
                )
                version = self._wait_for_version(base)
                seconds = time.monotonic() - started
                result.timings["rounds"] = result.timings.get("rounds", 0.0) + seconds
                if result.rounds and not self._sampled:
                    # each device measured the version it trained from on its held-out data
                    # before training (exactly what ``evaluate`` does after a sync): the
                    # previous round's figure, from every device that took part, for free
                    result.rounds[-1].metrics = _mean(_reported(outcomes, base))
                last = number == self.config.rounds
                metrics: list[dict[str, float]] = []
                if last or self._sampled:
                    measured = everyone if last else sample
                    label = f"evaluating v{version} on {len(measured)} devices"
                    clock = time.monotonic()
                    metrics = [m for m in self._parallel(label, self._evaluate, measured) if m]
                    result.timings["evaluation"] = (
                        result.timings.get("evaluation", 0.0) + time.monotonic() - clock
                    )
                result.rounds.append(
                    RoundReport(number, version, uploaded, dropped, seconds, _mean(metrics))
                )
            result.final["federated"] = (
                dict(result.rounds[-1].metrics) if result.rounds else _mean([])
            )
            clock = time.monotonic()
            result.final["popularity"] = self.popularity()
            result.timings["popularity"] = time.monotonic() - clock
        return result

    def _draw(self, k: int) -> list[int]:
        return sorted(int(i) for i in self.rng.choice(len(self.users), size=k, replace=False))

    def popularity(self) -> dict[str, float]:
        """Most-popular baseline on exactly the devices' own train/held-out splits."""
        splits = [
            split_events(c.store.events(), c.conditions.holdout_fraction) for c in self.clients
        ]
        index = self.clients[0].index
        counts = np.zeros(len(index))
        for s in splits:
            for e in s.train:
                if e.label > 0.5 and e.item_id in index:
                    counts[index[e.item_id]] += 1
        rows = []
        for s in splits:
            relevant = {index[e.item_id] for e in s.holdout if e.label > 0.5 and e.item_id in index}
            if relevant:
                seen = {index[e.item_id] for e in s.train if e.item_id in index}
                rows.append(ranking_metrics(top_k(counts, 10, exclude=seen), relevant, 10))
        return _mean(rows)

    def close(self) -> None:
        for c in self.clients:
            c.store.close()
        self.http.close()
