"""Webhooks: outbox written with the round, delivered with retries and backoff to a real
receiver, signed, secrets write-only and encrypted at rest, validation of the customer API."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from lerna.server.models_ops import Webhook
from tests.ops.conftest import OpsClient, Receiver, make_settings
from tests.ops.rounds import run_round

SECRET = "s3cret-signing-key-0123456789"


def _hook(
    ops: OpsClient, headers: dict[str, str], app_id: int, **body: object
) -> dict[str, object]:
    r = ops.http.post(f"/api/apps/{app_id}/webhooks", json=body, headers=headers)
    assert r.status_code == 201, r.text
    data: dict[str, object] = r.json()
    return data


def test_completed_round_is_delivered_after_failures_with_backoff_and_signature(
    ops: OpsClient, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    headers, app, task = ops.setup_task(cohort_size=2, min_participants=2, upload_seconds=600)
    hook = _hook(
        ops,
        headers,
        app["id"],
        kind="https",
        url=receiver.url,
        events=["round_completed"],
        secret=SECRET,
    )
    round_id = run_round(ops, app, task, devices=2)

    got = receiver.wait_for(3)
    assert len(got) == 3, f"expected 2 failures and 1 success, got {len(got)} requests"
    assert len({r.headers["X-Lerna-Delivery"] for r in got}) == 1  # one delivery, retried
    for r in got:
        t, mac = (part.split("=", 1)[1] for part in r.headers["X-Lerna-Signature"].split(","))
        want = hmac.new(SECRET.encode(), f"{t}.".encode() + r.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(mac, want)
    body = got[-1].json()
    assert body["event"] == "round_completed"
    assert body["data"]["round_id"] == round_id and body["data"]["participants"] == 2
    assert body["data"]["version"] == 1

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = ops.http.get(
            f"/api/apps/{app['id']}/webhooks/{hook['id']}/deliveries", headers=headers
        ).json()
        if rows and rows[0]["state"] == "delivered":
            break
        time.sleep(0.05)
    assert [(d["event"], d["state"], d["attempts"], d["last_status"]) for d in rows] == [
        ("round_completed", "delivered", 3, 200)
    ]


def test_backoff_grows_exponentially(ops: OpsClient, receiver: Receiver) -> None:
    receiver.fail_first = 3
    headers, app, task = ops.setup_task(cohort_size=1, min_participants=1, upload_seconds=600)
    _hook(
        ops,
        headers,
        app["id"],
        kind="https",
        url=receiver.url,
        events=["version_published"],
        secret=SECRET,
    )
    started = time.monotonic()
    run_round(ops, app, task, devices=1)
    got = receiver.wait_for(4)
    assert len(got) == 4
    elapsed = time.monotonic() - started
    # backoff 0.05, 0.1, 0.2 s between the four attempts: at least 0.35 s in all
    assert elapsed >= 0.35


def test_failed_round_reaches_slack_as_json(ops: OpsClient, receiver: Receiver) -> None:
    headers, app, task = ops.setup_task(
        cohort_size=3,
        min_participants=2,
        selection_seconds=0.3,
        upload_seconds=0.3,
    )
    _hook(ops, headers, app["id"], kind="slack", url=receiver.url, events=["round_failed"])
    device = ops.enroll(app["token"])
    assert ops.checkin(device, task["id"])["action"] == "train"
    got = receiver.wait_for(1)
    assert len(got) == 1
    text = got[0].json()["text"]
    assert text.startswith("Round 1 of feed failed: 0 uploads, fewer than the minimum of 2")


def test_payloads_are_json_encoded_not_templated() -> None:
    from datetime import UTC, datetime

    from lerna.server.services.webhooks import Claimed
    from lerna.server.webhook_worker import build_request

    hostile = {"task": 'x", "text": "pwned', "round": 1, "failure": "a\nb}"}
    for kind in ("slack", "fcm", "https"):
        job = Claimed(
            1, 7, kind, "https://h/x", "k" * 20, "round_failed", hostile, 1, datetime.now(UTC)
        )
        headers, raw = build_request(job, datetime.now(UTC))
        body = json.loads(raw)
        flat = json.dumps(body)
        assert flat.count('"text"') <= 1  # the hostile string did not add a key
        if kind == "slack":
            assert body["text"] == 'Round 1 of x", "text": "pwned failed: a\nb}'
        if kind == "fcm":
            assert body["message"]["data"]["task"] == hostile["task"]
            assert headers["Authorization"] == "Bearer " + "k" * 20


def test_secret_is_write_only_and_encrypted_at_rest(ops: OpsClient, receiver: Receiver) -> None:
    headers, app, _ = ops.setup_task()
    hook = _hook(
        ops,
        headers,
        app["id"],
        kind="https",
        url=receiver.url,
        events=["round_failed"],
        secret=SECRET,
    )
    assert "secret" not in hook and hook["has_secret"] is True
    listed = ops.http.get(f"/api/apps/{app['id']}/webhooks", headers=headers).json()
    assert SECRET not in json.dumps(listed)
    with ops.app.state.session_factory() as session:
        stored = session.scalar(select(Webhook.secret_encrypted).where(Webhook.id == hook["id"]))
    assert stored is not None and SECRET.encode() not in stored
    assert ops.app.state.secret_box.decrypt(stored) == SECRET


def test_test_endpoint_reports_the_receiver(ops: OpsClient, receiver: Receiver) -> None:
    receiver.fail_first = 1
    headers, app, _ = ops.setup_task()
    hook = _hook(
        ops,
        headers,
        app["id"],
        kind="https",
        url=receiver.url,
        events=["round_failed"],
        secret=SECRET,
    )
    url = f"/api/apps/{app['id']}/webhooks/{hook['id']}/test"
    first = ops.http.post(url, headers=headers).json()
    assert first == {"delivered": False, "status_code": 503, "error": "receiver answered 503"}
    assert ops.http.post(url, headers=headers).json() == {
        "delivered": True,
        "status_code": 200,
        "error": None,
    }
    assert receiver.requests[-1].json()["event"] == "test"
    dead = _hook(
        ops, headers, app["id"], kind="slack", url="http://127.0.0.1:9/x", events=["round_failed"]
    )
    r = ops.http.post(f"/api/apps/{app['id']}/webhooks/{dead['id']}/test", headers=headers).json()
    assert r["delivered"] is False and r["status_code"] is None and r["error"]


def test_update_delete_and_tenancy(ops: OpsClient, receiver: Receiver) -> None:
    headers, app, _ = ops.setup_task()
    hook = _hook(ops, headers, app["id"], kind="slack", url=receiver.url, events=["round_failed"])
    base = f"/api/apps/{app['id']}/webhooks/{hook['id']}"
    r = ops.http.patch(
        base,
        json={"enabled": False, "events": ["round_completed", "round_failed"]},
        headers=headers,
    )
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert r.json()["events"] == ["round_completed", "round_failed"]
    other = ops.signup()
    assert ops.http.get(f"/api/apps/{app['id']}/webhooks", headers=other).status_code == 404
    assert ops.http.delete(base, headers=other).status_code == 404
    assert ops.http.post(f"{base}/test", headers=other).status_code == 404
    assert ops.http.delete(base, headers=headers).status_code == 204
    assert ops.http.patch(base, json={"enabled": True}, headers=headers).status_code == 404


def test_bad_webhooks_are_refused_with_4xx(ops: OpsClient, receiver: Receiver) -> None:
    headers, app, _ = ops.setup_task()
    url = f"/api/apps/{app['id']}/webhooks"
    bad = [
        {"kind": "email", "url": receiver.url, "events": ["round_failed"]},
        {"kind": "slack", "url": "ftp://x/y", "events": ["round_failed"]},
        {"kind": "slack", "url": receiver.url, "events": []},
        {"kind": "slack", "url": receiver.url, "events": ["round_failed", "round_failed"]},
        {"kind": "slack", "url": receiver.url, "events": ["deleted_everything"]},
        {"kind": "https", "url": receiver.url, "events": ["round_failed"]},  # no secret
        {"kind": "https", "url": receiver.url, "events": ["round_failed"], "secret": "short"},
        {"kind": "slack", "url": receiver.url, "events": ["round_failed"], "extra": 1},
    ]
    for body in bad:
        r = ops.http.post(url, json=body, headers=headers)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["code"] in ("invalid", "secret_required")
    assert ops.http.get(url, headers=headers).json() == []


def test_plain_http_refused_in_production_and_no_key_means_no_secrets(
    database_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    from lerna.server.app import create_app

    settings = make_settings(
        database_url, tmp_path / "d", webhook_allow_http=False, secrets_key=None
    )
    app = create_app(settings)
    with TestClient(app) as client:
        api = OpsClient(client, app)
        headers, created, _ = api.setup_task()
        url = f"/api/apps/{created['id']}/webhooks"
        body = {"kind": "https", "url": receiver.url, "events": ["round_failed"], "secret": SECRET}
        r = client.post(url, json=body, headers=headers)
        assert r.status_code == 422 and r.json()["code"] == "insecure_url"
        r = client.post(url, json={**body, "url": "https://hooks.example.com/x"}, headers=headers)
        if database_url.startswith("sqlite"):
            assert r.status_code == 201  # embedded: a key was generated into the data dir
            assert (tmp_path / "d" / "secrets_key").stat().st_mode & 0o777 == 0o600
        else:
            assert r.status_code == 503 and r.json()["code"] == "no_secrets_key"
    app.state.engine.dispose()
