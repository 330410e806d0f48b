"""SecAgg+ status polls come from a read-only transaction: a poll is answered while another
transaction holds the database for writing, and what it answers is what the locked path does."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from lerna.core.dp import PrivacyConfig
from lerna.core.secure_update import contribution
from lerna.core.weights import layout_of
from lerna.sdk.api import DeviceAPI
from lerna.sdk.secure import SecureRound
from lerna.server.db import make_engine, make_read_engine
from tests.helpers import ApiClient
from tests.server.test_secure_rounds import SECURE


def _round_at_share_keys(api: ApiClient, n: int = 4) -> tuple[dict[str, Any], list[SecureRound]]:
    _, app, task = api.setup_task(
        cohort_size=n, min_participants=3, privacy=SECURE, stage_seconds=60
    )
    devices = [api.enroll(app["token"]) for _ in range(n)]
    _, base = api.model(devices[0], task["id"])
    size = sum(s.size for s in layout_of(base))
    privacy = PrivacyConfig.model_validate(SECURE)
    rounds = []
    for i, device in enumerate(devices):
        assignment = api.checkin(device, task["id"])
        assert assignment["action"] == "train" and assignment["secure"] is True
        dev = DeviceAPI(api.http)
        dev.credential = device["Authorization"][7:]
        vector = contribution(np.full(size, 0.01 * (i + 1)), 10, {}, privacy)
        rounds.append(
            SecureRound(dev, assignment["round_id"], vector, privacy, np.random.default_rng(50 + i))
        )
    for r in rounds:  # everyone advertises keys; the last message closes the stage
        r.step()
    assert {r.progress for r in rounds} == {"advertise_keys", "share_keys"}
    return task, rounds


class _Writer:
    """Another connection holding the database for writing (SQLite's write lock, or the
    task row lock on PostgreSQL) until released."""

    def __init__(self, database_url: str, task_id: int) -> None:
        self.database_url, self.task_id = database_url, task_id

    def __enter__(self) -> _Writer:
        if self.database_url.startswith("sqlite"):
            self._conn: Any = sqlite3.connect(self.database_url.removeprefix("sqlite:///"))
            self._conn.isolation_level = None
            self._conn.execute("BEGIN IMMEDIATE")
        else:
            self._engine = create_engine(self.database_url)
            self._conn = self._engine.connect()
            self._conn.execute(
                text("SELECT id FROM ml_tasks WHERE id = :id FOR UPDATE"), {"id": self.task_id}
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.rollback()
        self._conn.close()
        if not self.database_url.startswith("sqlite"):
            self._engine.dispose()


def test_polls_are_answered_while_a_writer_holds_the_database(
    api: ApiClient, database_url: str
) -> None:
    task, rounds = _round_at_share_keys(api)
    answers: list[Any] = []

    def poll() -> None:
        answers.extend(r.api.secagg_status(r.round_id) for r in rounds)

    with _Writer(database_url, task["id"]):
        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        thread.join(timeout=20)
        assert not thread.is_alive(), "a status poll waited for the writer"
    assert [a.stage for a in answers] == ["share_keys"] * len(rounds)
    for answer in answers:
        assert answer.directory is not None and answer.config is not None
        neighbours = {k.party for k in answer.directory.keys}
        assert answer.party not in neighbours and len(neighbours) == len(rounds) - 1
    # the read path answered exactly what the protocol needs: the round completes from here
    for _ in range(40):
        for r in rounds:
            r.step()
        if all(r.done for r in rounds):
            break
    assert [r.progress for r in rounds] == ["completed"] * len(rounds)


def test_the_read_engine_refuses_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    reader = make_read_engine(url, engine)
    with pytest.raises(OperationalError, match="readonly"), reader.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with reader.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    reader.dispose()
    engine.dispose()


def test_writers_of_one_process_queue_without_losing_an_update(tmp_path: Path) -> None:
    """Read-then-write transactions from many threads: none fails, none is lost."""
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE c (n INTEGER)"))
        conn.execute(text("INSERT INTO c VALUES (0)"))

    def bump() -> None:
        for _ in range(50):
            with engine.begin() as conn:
                n = conn.execute(text("SELECT n FROM c")).scalar_one()
                conn.execute(text("UPDATE c SET n = :n"), {"n": n + 1})

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM c")).scalar_one() == 400
    engine.dispose()
