"""Overview figures: weekly active devices, examples, versions, participation, success rate."""

from __future__ import annotations

from tests.helpers import ApiClient, update_like


def test_overview_and_weekly_activity(api: ApiClient) -> None:
    headers, app, task = api.setup_task(cohort_size=2, min_participants=2)
    devices = [api.enroll(app["token"]) for _ in range(2)]
    _, base = api.model(devices[0], task["id"])
    assignments = [api.checkin(d, task["id"]) for d in devices]
    for d in devices:
        assert (
            api.upload(
                d, assignments[0]["round_id"], update_like(base, 0.1), num_examples=7
            ).status_code
            == 200
        )
    r = api.http.post(
        f"/v1/device/tasks/{task['id']}/telemetry",
        json={"version": 1, "predictions": 10, "successes": 4},
        headers=devices[0],
    )
    assert r.status_code == 204
    bad = api.http.post(
        f"/v1/device/tasks/{task['id']}/telemetry",
        json={"version": 1, "predictions": 1, "successes": 4},
        headers=devices[0],
    )
    assert bad.status_code == 422
    stats = api.http.get(f"/api/apps/{app['id']}/stats", headers=headers).json()
    assert stats["versions"] == 1 and stats["total_examples"] == 14
    assert stats["active_devices_7d"] == 2 and stats["enrolled_devices"] == 2
    assert stats["last_round_participants"] == 2 and stats["last_round_eligible"] == 2
    assert stats["success_rate"] == 0.4 and stats["predictions"] == 10
    weeks = api.http.get(f"/api/apps/{app['id']}/activity?weeks=4", headers=headers).json()
    assert len(weeks) == 4 and weeks[-1]["active_devices"] == 2 and weeks[0]["active_devices"] == 0


def test_participation_never_exceeds_eligible_after_a_blacklist(api: ApiClient) -> None:
    headers, app, task = api.setup_task(cohort_size=2, min_participants=2)
    devices = [api.enroll(app["token"]) for _ in range(2)]
    _, base = api.model(devices[0], task["id"])
    assignments = [api.checkin(d, task["id"]) for d in devices]
    for d in devices:
        api.upload(d, assignments[0]["round_id"], update_like(base, 0.1))
    listed = api.http.get(f"/api/apps/{app['id']}/devices", headers=headers).json()
    api.http.put(
        f"/api/apps/{app['id']}/devices/{listed[0]['id']}/blacklist",
        json={"block_training": True, "block_predictions": False},
        headers=headers,
    )
    stats = api.http.get(f"/api/apps/{app['id']}/stats", headers=headers).json()
    assert stats["last_round_participants"] == 2 <= stats["last_round_eligible"]
