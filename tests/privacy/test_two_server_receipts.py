"""Upload receipts end to end: the FL-API answers an accepted masked upload with a receipt, the
SDK passes it on to the MPC gateway, and the MPC service adds that device's mask into the round's
running sum, so that at close no mask is left to expand; a device that took its seed and
vanished is never receipted, and never in the set. On SQLite and
PostgreSQL, with the real FL-API and the real MPC app mounted at /mpc (as `lerna serve all`)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from tests.helpers import ApiClient
from tests.server.test_two_server_rounds import (  # the two-server platform and its helpers
    PRIVACY,
    _checkin,
    _device_api,
    _setup,
    _upload,
    _wait_for,
    platform,
)

from lerna.core.protocol import TwoServerAssignment
from lerna.core.secure_update import contribution
from lerna.core.weights import flatten, layout_of
from lerna.sdk import two_server as device_side

__all__ = ["platform"]  # the fixture, re-exported so pytest finds it here


def _issued(mpc: FastAPI) -> int:
    with mpc.state.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM seed_issues")).scalar_one())


def test_accepted_uploads_are_receipted_at_the_mpc(
    platform: tuple[ApiClient, FastAPI], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lerna.mpc")
    api, mpc = platform
    headers, app, task, devices = _setup(api, 5, selection_seconds=1.5, upload_seconds=1.0)
    _, base = api.model(devices[0], task["id"])
    layout = layout_of(base)
    rng = np.random.default_rng(11)
    deltas = [rng.normal(scale=0.5, size=sum(s.size for s in layout)) for _ in devices]
    assignments = [_checkin(api, d, task) for d in devices]
    # device 4 takes its seed and vanishes: issued at the MPC, never receipted
    device_side.fetch_seed(
        _device_api(api, devices[4]),
        TwoServerAssignment.model_validate(assignments[4]["two_server"]),
    )
    for i in range(4):
        _upload(api, devices[i], assignments[i], contribution(deltas[i], 100, {}, PRIVACY), i)
    closed = _wait_for(api, headers, app, task)
    assert closed["state"] == "completed" and closed["uploads"] == 4
    assert _issued(mpc) == 5
    answers = [r.getMessage() for r in caplog.records if r.name == "lerna.mpc"]
    assert len(answers) == 1 and answers[0].endswith(": 4 devices, 0 masks expanded at close")
    _, new = api.model(devices[0], task["id"])
    expected = flatten(base, layout) + np.mean(deltas[:4], axis=0)
    np.testing.assert_allclose(flatten(new, layout), expected, atol=1e-3)
