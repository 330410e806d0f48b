"""Check-ins that can only be told to wait are answered from a snapshot of the closed round,
without the task lock and without a query; the snapshot never hides a change this process
committed (a closed round, a member's own assignment, another app's task)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event

from lerna.server.services import checkin_snapshots, devices
from tests.helpers import update_like
from tests.ops.conftest import OpsClient


def _statements(app: FastAPI) -> list[str]:
    """Statements run for requests (not by the round ticker or the webhook worker)."""
    seen: list[str] = []

    def record(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if threading.current_thread().name not in ("round-ticker", "webhook-worker"):
            seen.append(statement)

    event.listen(app.state.engine, "before_cursor_execute", record)
    return seen


def test_busy_checkins_need_no_query_and_a_closed_round_is_seen_at_once(
    ops: OpsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        checkin_snapshots, "SNAPSHOT_SECONDS", 60.0
    )  # a slow machine must not refresh it
    devices.use_cache(ops.app.state.engine, ops.app.state.cache, 60)
    _, app, task = ops.setup_task(cohort_size=1, min_participants=1, upload_seconds=600)
    member, other = ops.enroll(app["token"]), ops.enroll(app["token"])
    job = ops.checkin(member, task["id"])
    assert job["action"] == "train"
    assert ops.checkin(other, task["id"])["action"] == "wait"  # reads the snapshot

    statements = _statements(ops.app)
    for _ in range(5):
        answer = ops.checkin(other, task["id"])
        assert answer["action"] == "wait" and answer["retry_after"] > 500
    assert statements == [], f"busy check-ins ran {len(statements)} statements"

    again = ops.checkin(member, task["id"])  # a member is never told to wait by the snapshot
    assert again["action"] == "train" and again["round_id"] == job["round_id"]

    _, base = ops.model(member, task["id"])
    r = ops.upload(member, job["round_id"], update_like(base, 0.5), base_version=0)
    assert r.status_code == 200, r.text
    # the upload completed the round: the next check-in opens a new one, not "wait"
    fresh = ops.checkin(other, task["id"])
    assert fresh["action"] == "train" and fresh["round_id"] != job["round_id"]


def test_snapshot_keeps_tasks_to_their_app(ops: OpsClient) -> None:
    _, app, task = ops.setup_task(cohort_size=1, min_participants=1, upload_seconds=600)
    assert ops.checkin(ops.enroll(app["token"]), task["id"])["action"] == "train"
    assert ops.checkin(ops.enroll(app["token"]), task["id"])["action"] == "wait"  # snapshot
    _, stranger_app, _ = ops.setup_task()
    stranger = ops.enroll(stranger_app["token"])
    r = ops.http.post(f"/v1/device/tasks/{task['id']}/checkin", headers=stranger)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
