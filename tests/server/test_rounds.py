"""Federated rounds over the real HTTP surface, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np

from tests.helpers import ApiClient, update_like


def test_round_averages_updates_weighted_by_examples(api: ApiClient) -> None:
    headers, app, task = api.setup_task(cohort_size=3, min_participants=3)
    devices = [api.enroll(app["token"]) for _ in range(3)]
    _, base = api.model(devices[0], task["id"])
    for device, (value, n) in zip(devices, [(1.0, 1), (2.0, 2), (4.0, 1)], strict=True):
        assignment = api.checkin(device, task["id"])
        assert assignment["action"] == "train"
        r = api.upload(device, assignment["round_id"], update_like(base, value), num_examples=n)
        assert r.status_code == 200, r.text
    manifest, new = api.model(devices[0], task["id"])
    assert manifest.version == 1
    expected = (1.0 * 1 + 2.0 * 2 + 4.0 * 1) / 4
    for name in base:
        np.testing.assert_allclose(new[name], base[name] + expected, rtol=1e-6)
    versions = api.http.get(
        f"/api/apps/{app['id']}/tasks/{task['id']}/versions", headers=headers
    ).json()
    assert [v["version"] for v in versions] == [0, 1]
    assert versions[0]["metrics"] == {"ndcg@10": 0.25} and versions[0]["reports"] == 3
    assert versions[1]["participants"] == 3 and versions[1]["num_examples"] == 4
    rounds = api.http.get(
        f"/api/apps/{app['id']}/tasks/{task['id']}/rounds", headers=headers
    ).json()
    assert rounds[0]["state"] == "completed" and rounds[0]["dropouts"] == 0


def test_cohort_full_means_wait(api: ApiClient) -> None:
    _, app, task = api.setup_task(cohort_size=1, min_participants=1)
    first, second = api.enroll(app["token"]), api.enroll(app["token"])
    assert api.checkin(first, task["id"])["action"] == "train"
    again = api.checkin(first, task["id"])
    assert again["action"] == "train", "a selected device checking in again keeps its assignment"
    wait = api.checkin(second, task["id"])
    assert wait["action"] == "wait" and wait["retry_after"] >= 1


def test_replayed_upload_is_refused_and_not_counted_twice(api: ApiClient) -> None:
    _, app, task = api.setup_task(cohort_size=2, min_participants=2)
    device = api.enroll(app["token"])
    other = api.enroll(app["token"])
    _, base = api.model(device, task["id"])
    rid = api.checkin(device, task["id"])["round_id"]
    api.checkin(other, task["id"])
    first = api.upload(device, rid, update_like(base, 1.0), upload_id="same-upload-1")
    assert first.status_code == 200 and first.json()["uploads"] == 1
    again = api.upload(device, rid, update_like(base, 1.0), upload_id="same-upload-1")
    assert again.status_code == 409 and again.json()["code"] == "already_uploaded"
    replay = api.upload(device, rid, update_like(base, 5.0), upload_id="other-upload-2")
    assert replay.status_code == 409 and replay.json()["code"] == "replay"
    done = api.upload(other, rid, update_like(base, 3.0))
    assert done.json()["uploads"] == 2
    _, new = api.model(device, task["id"])
    np.testing.assert_allclose(new["b"], base["b"] + 2.0)


def test_round_fails_below_minimum_at_deadline_and_next_round_opens(api: ApiClient) -> None:
    import time

    _, app, task = api.setup_task(
        cohort_size=5, min_participants=2, selection_seconds=0.3, upload_seconds=0.3
    )
    device = api.enroll(app["token"])
    first = api.checkin(device, task["id"])
    time.sleep(0.7)
    second = api.checkin(device, task["id"])
    assert second["action"] == "train" and second["round_id"] != first["round_id"]
    late = api.upload(device, first["round_id"], update_like(api.model(device, task["id"])[1], 1.0))
    assert late.status_code == 409 and late.json()["code"] == "round_closed"


def test_dropouts_are_counted_when_the_deadline_closes_the_round(api: ApiClient) -> None:
    import time

    headers, app, task = api.setup_task(
        cohort_size=3, min_participants=2, selection_seconds=2.0, upload_seconds=0.5
    )
    devices = [api.enroll(app["token"]) for _ in range(3)]
    _, base = api.model(devices[0], task["id"])
    assignments = [api.checkin(d, task["id"]) for d in devices]
    rid = assignments[0]["round_id"]
    for d in devices[:2]:
        assert api.upload(d, rid, update_like(base, 1.0)).status_code == 200
    deadline = time.monotonic() + 10
    while (
        time.monotonic() < deadline
    ):  # the server's ticker closes the round after the upload deadline
        rounds = api.http.get(
            f"/api/apps/{app['id']}/tasks/{task['id']}/rounds", headers=headers
        ).json()
        if rounds[0]["state"] != "open":
            break
        time.sleep(0.1)
    assert rounds[0]["state"] == "completed"
    assert rounds[0]["uploads"] == 2 and rounds[0]["dropouts"] == 1
