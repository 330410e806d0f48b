"""Every kind of bad input gets a clear 4xx and writes nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from tests.helpers import CATALOG, PLAIN, SCHEMA, ApiClient, update_like


@pytest.fixture
def round_ctx(api: ApiClient) -> dict:  # type: ignore[type-arg]
    headers, app, task = api.setup_task(cohort_size=2, min_participants=2)
    device = api.enroll(app["token"])
    _, base = api.model(device, task["id"])
    rid = api.checkin(device, task["id"])["round_id"]
    return {
        "headers": headers,
        "app": app,
        "task": task,
        "device": device,
        "base": base,
        "rid": rid,
    }


def _uploads(api: ApiClient, ctx: dict) -> int:  # type: ignore[type-arg]
    rounds = api.http.get(
        f"/api/apps/{ctx['app']['id']}/tasks/{ctx['task']['id']}/rounds", headers=ctx["headers"]
    )
    return int(rounds.json()[0]["uploads"])


def test_wrong_shape_dtype_and_names_are_refused(api: ApiClient, round_ctx: dict) -> None:  # type: ignore[type-arg]
    base, device, rid = round_ctx["base"], round_ctx["device"], round_ctx["rid"]
    bad_shape = {k: np.zeros(v.size + 1, np.float32) for k, v in base.items()}
    bad_dtype = {k: v.astype(np.float64) for k, v in base.items()}
    extra = {**update_like(base, 0.1), "x": np.zeros(3, np.float32)}
    for update in (bad_shape, bad_dtype, extra):
        r = api.upload(device, rid, update)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "bad_update" and r.json()["message"]
    assert _uploads(api, round_ctx) == 0


def test_nan_and_inf_are_refused(api: ApiClient, round_ctx: dict) -> None:  # type: ignore[type-arg]
    for value in (np.nan, np.inf):
        update = update_like(round_ctx["base"], 0.0)
        update["w"][0] = value
        r = api.upload(round_ctx["device"], round_ctx["rid"], update)
        assert r.status_code == 422 and "NaN or Inf" in r.json()["message"]
    assert _uploads(api, round_ctx) == 0


def test_garbage_and_truncated_archives(api: ApiClient, round_ctx: dict) -> None:  # type: ignore[type-arg]
    url = f"/v1/device/rounds/{round_ctx['rid']}/upload"
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("w.npy", b"not numpy")
    for body in (b"", b"hello", good.getvalue(), b"PK\x03\x04" + b"\x00" * 40):
        r = api.http.post(url, content=body, headers=round_ctx["device"])
        assert r.status_code == 422, (body[:10], r.text)
        assert r.json()["code"] == "bad_archive"


def test_bad_meta_is_refused(api: ApiClient, round_ctx: dict) -> None:  # type: ignore[type-arg]
    update = update_like(round_ctx["base"], 0.1)
    for meta in (
        {
            "round_id": round_ctx["rid"],
            "base_version": 0,
            "num_examples": 0,
            "upload_id": "abcdefgh12",
        },
        {"round_id": round_ctx["rid"], "base_version": 0, "num_examples": 3, "upload_id": "x"},
        {
            "round_id": round_ctx["rid"],
            "base_version": 0,
            "num_examples": 3,
            "upload_id": "abcdefgh12",
            "metrics": {"ndcg@10": 7.0},
        },
        {
            "round_id": round_ctx["rid"] + 99,
            "base_version": 0,
            "num_examples": 3,
            "upload_id": "abcdefgh12",
        },
    ):
        r = api.upload(round_ctx["device"], round_ctx["rid"], update, meta=meta)
        assert r.status_code == 422, r.text
    assert _uploads(api, round_ctx) == 0


def test_stale_version_and_unknown_round(api: ApiClient, round_ctx: dict) -> None:  # type: ignore[type-arg]
    update = update_like(round_ctx["base"], 0.1)
    stale = api.upload(round_ctx["device"], round_ctx["rid"], update, base_version=3)
    assert stale.status_code == 409 and stale.json()["code"] == "stale_version"
    unknown = api.upload(
        round_ctx["device"],
        9999,
        update,
        meta={"round_id": 9999, "base_version": 0, "num_examples": 1, "upload_id": "abcdefgh12"},
    )
    assert unknown.status_code == 404


def test_oversize_upload_is_refused(api: ApiClient, round_ctx: dict) -> None:  # type: ignore[type-arg]
    big = b"\x00" * (33 << 20)
    r = api.http.post(
        f"/v1/device/rounds/{round_ctx['rid']}/upload", content=big, headers=round_ctx["device"]
    )
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


def test_unknown_device_and_not_selected_device(api: ApiClient, round_ctx: dict) -> None:  # type: ignore[type-arg]
    update = update_like(round_ctx["base"], 0.1)
    r = api.upload({"Authorization": "Bearer dev_nope"}, round_ctx["rid"], update)
    assert r.status_code == 401 and r.json()["code"] == "bad_credential"
    outsider = api.enroll(round_ctx["app"]["token"])
    r = api.upload(outsider, round_ctx["rid"], update)
    assert r.status_code == 403 and r.json()["code"] == "not_selected"
    assert api.http.post(f"/v1/device/tasks/{round_ctx['task']['id']}/checkin").status_code == 401


def test_blacklisted_device_cannot_train(api: ApiClient, round_ctx: dict) -> None:  # type: ignore[type-arg]
    app_id = round_ctx["app"]["id"]
    devices = api.http.get(f"/api/apps/{app_id}/devices", headers=round_ctx["headers"]).json()
    r = api.http.put(
        f"/api/apps/{app_id}/devices/{devices[0]['id']}/blacklist",
        json={"block_training": True, "block_predictions": False},
        headers=round_ctx["headers"],
    )
    assert r.status_code == 200 and r.json()["block_training"]
    up = api.upload(round_ctx["device"], round_ctx["rid"], update_like(round_ctx["base"], 0.1))
    assert up.status_code == 403 and up.json()["code"] == "device_blacklisted"
    check = api.http.post(
        f"/v1/device/tasks/{round_ctx['task']['id']}/checkin", headers=round_ctx["device"]
    )
    assert check.status_code == 403
    config = api.http.get("/v1/device/config", headers=round_ctx["device"]).json()
    assert config == {"training_enabled": False, "predictions_enabled": True}
    assert _uploads(api, round_ctx) == 0


def test_malformed_json_and_wrong_types(api: ApiClient) -> None:
    r = api.http.post(
        "/api/auth/register", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid"
    r = api.http.post("/api/auth/register", json={"email": "nope", "password": "short", "name": ""})
    assert r.status_code == 422 and "email" in r.json()["message"]
    r = api.http.post(
        "/v1/devices/enroll", json={"device_uid": "a b c"}, headers={"X-App-Token": "app_x"}
    )
    assert r.status_code in (401, 422)


def test_task_config_validation(api: ApiClient) -> None:
    headers = api.signup()
    app = api.create_app(headers)
    url = f"/api/apps/{app['id']}/tasks"
    cases = [
        ({"model_type": "nope"}, "bad_model_type"),
        ({"hyper": {"learning_rate": -1}}, "bad_hyper"),
        ({"hyper": {"unknown": 1}}, "bad_hyper"),
        ({"cohort_size": 2, "min_participants": 5}, "invalid"),
        ({"privacy": {"mode": "secagg+", "threshold": 20}, "min_participants": 10}, "invalid"),
        ({"privacy": {"mode": "secagg+", "noise_multiplier": 0}}, "invalid"),
        ({"privacy": {"mode": "bogus"}}, "invalid"),
        ({"catalog": {"items": {"x": {"colour": "red"}}}}, "bad_catalog"),
        ({"catalog": {"items": {"x": {"year": float("nan")}}}}, "invalid"),
    ]
    for extra, code in cases:
        body = {
            "name": "t",
            "feature_schema": SCHEMA,
            "catalog": {"items": CATALOG},
            "privacy": PLAIN,
            **extra,
        }
        r = (
            api.http.post(url, json=body, headers=headers)
            if "nan" not in repr(extra)
            else api.http.post(
                url,
                content=_json_with_nan(body),
                headers={**headers, "Content-Type": "application/json"},
            )
        )
        assert r.status_code == 422, (extra, r.text)
        assert r.json()["code"] == code, (extra, r.json())
    assert api.http.get(url, headers=headers).json() == []


def _json_with_nan(body: dict) -> bytes:  # type: ignore[type-arg]
    import json

    return json.dumps(body).encode()


def test_duplicate_email_and_wrong_password(api: ApiClient) -> None:
    api.signup("dup@example.com")
    r = api.http.post(
        "/api/auth/register",
        json={"email": "dup@example.com", "password": "password-2", "name": "x"},
    )
    assert r.status_code == 409 and r.json()["code"] == "email_taken"
    r = api.http.post(
        "/api/auth/login", json={"email": "dup@example.com", "password": "wrong-password"}
    )
    assert r.status_code == 401
    r = api.http.post(
        "/api/auth/login", json={"email": "ghost@example.com", "password": "wrong-password"}
    )
    assert r.status_code == 401 and r.json()["code"] == "bad_credentials"
    assert api.http.get("/api/me", headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401


def test_task_update_validation_and_privacy_section(api: ApiClient) -> None:
    headers, app, task = api.setup_task(cohort_size=10, min_participants=5)
    url = f"/api/apps/{app['id']}/tasks/{task['id']}"
    plain_no_budget = {"mode": "none", "noise_multiplier": 0, "epsilon_budget": None}
    r = api.http.patch(url, json={"privacy": plain_no_budget}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["privacy"]["epsilon_budget"] is None
    secure = {"mode": "secagg+", "threshold": 5, "noise_multiplier": 1.0, "epsilon_budget": 4.0}
    r = api.http.patch(url, json={"privacy": secure}, headers=headers)
    assert r.status_code == 200 and r.json()["privacy_spent"]["budget"] == 4.0
    for body in (
        {"privacy": {**secure, "threshold": 6}},
        {"privacy": {"mode": "secagg+", "noise_multiplier": 0, "epsilon_budget": 3}},
        {"min_participants": 11},
        {"hyper": {"learning_rate": "fast"}},
        {"cohort_size": 0},
    ):
        r = api.http.patch(url, json=body, headers=headers)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["message"]
    assert api.http.get(url, headers=headers).json()["privacy"]["threshold"] == 5
