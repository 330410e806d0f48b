"""One customer never sees another's apps, tasks, devices or models; app tokens are per app."""

from __future__ import annotations

from tests.helpers import ApiClient, update_like


def test_customer_cannot_reach_another_customers_app(api: ApiClient) -> None:
    alice, app, task = api.setup_task()
    mallory = api.signup()
    base = f"/api/apps/{app['id']}"
    for method, path in [
        ("GET", base),
        ("PATCH", base),
        ("DELETE", base),
        ("POST", f"{base}/token"),
        ("GET", f"{base}/stats"),
        ("GET", f"{base}/tasks"),
        ("GET", f"{base}/tasks/{task['id']}"),
        ("GET", f"{base}/tasks/{task['id']}/versions"),
        ("GET", f"{base}/tasks/{task['id']}/versions/0/weights"),
        ("GET", f"{base}/tasks/{task['id']}/rounds"),
        ("GET", f"{base}/devices"),
    ]:
        r = api.http.request(
            method, path, headers=mallory, json={"name": "x"} if method == "PATCH" else None
        )
        assert r.status_code == 404, (method, path, r.status_code)
    assert api.http.get("/api/apps", headers=mallory).json() == []
    assert api.http.get(base, headers=alice).status_code == 200


def test_device_of_one_app_cannot_touch_another_apps_task_or_round(api: ApiClient) -> None:
    _, app_a, task_a = api.setup_task(cohort_size=2, min_participants=2)
    _, app_b, task_b = api.setup_task(cohort_size=2, min_participants=2)
    dev_a = api.enroll(app_a["token"])
    dev_b = api.enroll(app_b["token"])
    assert (
        api.http.post(f"/v1/device/tasks/{task_a['id']}/checkin", headers=dev_b).status_code == 404
    )
    assert api.http.get(f"/v1/device/tasks/{task_a['id']}/model", headers=dev_b).status_code == 404
    assert (
        api.http.get(f"/v1/device/tasks/{task_a['id']}/catalog", headers=dev_b).status_code == 404
    )
    rid = api.checkin(dev_a, task_a["id"])["round_id"]
    _, base = api.model(dev_a, task_a["id"])
    assert api.upload(dev_b, rid, update_like(base, 1.0)).status_code == 404
    tasks_b = api.http.get("/v1/device/tasks", headers=dev_b).json()
    assert [t["id"] for t in tasks_b] == [task_b["id"]]


def test_rotated_app_token_stops_enrollment_with_the_old_one(api: ApiClient) -> None:
    headers, app, _ = api.setup_task()
    rotated = api.http.post(f"/api/apps/{app['id']}/token", headers=headers).json()["token"]
    old = api.http.post(
        "/v1/devices/enroll", json={"device_uid": "d1"}, headers={"X-App-Token": app["token"]}
    )
    assert old.status_code == 401
    assert (
        api.http.post(
            "/v1/devices/enroll", json={"device_uid": "d1"}, headers={"X-App-Token": rotated}
        ).status_code
        == 201
    )
