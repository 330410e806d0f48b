"""Driving one federated round through the HTTP API (shared by the operations tests)."""

from __future__ import annotations

from typing import Any

from tests.helpers import ApiClient, update_like


def run_round(api: ApiClient, app: dict[str, Any], task: dict[str, Any], devices: int) -> int:
    """Enroll ``devices`` devices, let each train and upload once; the round id."""
    creds = [api.enroll(app["token"]) for _ in range(devices)]
    _, base = api.model(creds[0], task["id"])
    assignments = [api.checkin(c, task["id"]) for c in creds]
    round_id = int(assignments[0]["round_id"])
    for cred, assignment in zip(creds, assignments, strict=True):
        r = api.upload(
            cred, round_id, update_like(base, 0.5), base_version=assignment["base_version"]
        )
        assert r.status_code == 200, r.text
    return round_id
