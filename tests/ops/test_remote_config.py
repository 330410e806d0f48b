"""Remote config: defaults, customer edits, ETags, blacklist overrides, validation."""

from __future__ import annotations

import uuid

from tests.ops.conftest import OpsClient


def _enroll(ops: OpsClient, token: str) -> tuple[int, dict[str, str]]:
    r = ops.http.post(
        "/v1/devices/enroll", json={"device_uid": uuid.uuid4().hex}, headers={"X-App-Token": token}
    )
    assert r.status_code == 201, r.text
    return r.json()["device_id"], {"Authorization": f"Bearer {r.json()['credential']}"}


def test_device_gets_defaults_then_the_customers_values_with_etag(ops: OpsClient) -> None:
    headers, app, _ = ops.setup_task()
    _, device = _enroll(ops, app["token"])
    first = ops.http.get("/v1/device/remote-config", headers=device)
    assert first.status_code == 200
    body = first.json()
    assert body["revision"] == 0 and body["training_enabled"] and body["upload_error_logs"]
    assert body["upload_debug_data"] is False
    url = f"/api/apps/{app['id']}/remote-config"
    values = {"training_min_sessions": 3, "ab_test_fraction": 0.25, "extra": {"theme": "dark"}}
    saved = ops.http.put(url, json=values, headers=headers)
    assert saved.status_code == 200 and saved.json()["revision"] == 1
    second = ops.http.get("/v1/device/remote-config", headers=device)
    assert second.json()["training_min_sessions"] == 3
    assert second.json()["extra"] == {"theme": "dark"} and second.json()["revision"] == 1
    etag = second.headers["etag"]
    assert etag != first.headers["etag"]
    again = ops.http.get("/v1/device/remote-config", headers={**device, "If-None-Match": etag})
    assert again.status_code == 304
    assert ops.http.get(url, headers=headers).json()["ab_test_fraction"] == 0.25


def test_blacklist_overrides_one_device(ops: OpsClient) -> None:
    headers, app, _ = ops.setup_task()
    ops.http.put(
        f"/api/apps/{app['id']}/remote-config", json={"upload_debug_data": True}, headers=headers
    )
    blocked_id, blocked = _enroll(ops, app["token"])
    _, other = _enroll(ops, app["token"])
    r = ops.http.put(
        f"/api/apps/{app['id']}/devices/{blocked_id}/blacklist",
        json={"block_training": True, "block_predictions": False},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    mine = ops.http.get("/v1/device/remote-config", headers=blocked).json()
    assert mine["training_enabled"] is False and mine["predictions_enabled"] is True
    assert mine["upload_debug_data"] is False
    theirs = ops.http.get("/v1/device/remote-config", headers=other).json()
    assert theirs["training_enabled"] is True and theirs["upload_debug_data"] is True
    preview = ops.http.get(
        f"/api/apps/{app['id']}/remote-config/devices/{blocked_id}", headers=headers
    )
    assert preview.json() == mine


def test_bad_values_are_refused_and_nothing_changes(ops: OpsClient) -> None:
    headers, app, _ = ops.setup_task()
    url = f"/api/apps/{app['id']}/remote-config"
    for bad in (
        {"ab_test_fraction": 1.5},
        {"confidence_threshold": -0.1},
        {"fl_api_url": "not a url"},
        {"unknown_switch": True},
        {"extra": {"k": {"nested": 1}}},
        {"refresh_seconds": 1},
    ):
        r = ops.http.put(url, json=bad, headers=headers)
        assert r.status_code == 422, (bad, r.text)
    assert ops.http.get(url, headers=headers).json()["revision"] == 0
    other = ops.signup()
    assert ops.http.get(url, headers=other).status_code == 404
    assert ops.http.get("/v1/device/remote-config").status_code == 401
