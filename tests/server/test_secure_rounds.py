"""SecAgg+ rounds through the FL-API's HTTP surface, on SQLite and PostgreSQL: the published
model is the weighted mean of the survivors' updates, dropouts are survived, and the server's
database never holds one device's update in the clear."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sqlalchemy import create_engine, text

from lerna.core.dp import PrivacyConfig
from lerna.core.secure_update import contribution
from lerna.core.weights import flatten, layout_of
from lerna.sdk.api import DeviceAPI
from lerna.sdk.secure import SecureRound
from tests.helpers import ApiClient

SECURE = {
    "mode": "secagg+",
    "threshold": 3,
    "noise_multiplier": 0,
    "epsilon_budget": None,
    "clip_norm": 100.0,
}


def _devices(
    api: ApiClient, n: int, **config: Any
) -> tuple[dict[str, str], dict[str, Any], dict[str, Any], list[dict[str, str]]]:
    config = {
        "cohort_size": n,
        "min_participants": 3,
        "privacy": SECURE,
        "stage_seconds": 30,
        **config,
    }
    headers, app, task = api.setup_task(**config)
    return headers, app, task, [api.enroll(app["token"]) for _ in range(n)]


def _rounds_for(
    api: ApiClient,
    devices: list[dict[str, str]],
    task: dict[str, Any],
    deltas: list[np.ndarray],
    examples: list[int],
) -> list[SecureRound]:
    privacy = PrivacyConfig.model_validate(SECURE)
    rounds = []
    for i, (device, delta, n) in enumerate(zip(devices, deltas, examples, strict=True)):
        assignment = api.checkin(device, task["id"])
        assert assignment["action"] == "train" and assignment["secure"] is True
        api_dev = DeviceAPI(api.http)
        api_dev.credential = device["Authorization"][7:]
        vector = contribution(delta, n, {"ndcg@10": 0.5}, privacy)
        rounds.append(
            SecureRound(
                api_dev, assignment["round_id"], vector, privacy, np.random.default_rng(100 + i)
            )
        )
    return rounds


def _drive(
    rounds: list[SecureRound], stop_after: dict[int, str] | None = None, max_passes: int = 30
) -> None:
    stop_after = stop_after or {}
    for _ in range(max_passes):
        for i, r in enumerate(rounds):
            if i in stop_after and stop_after[i] in r.sent:
                continue  # this device vanished after sending that stage's message
            r.step()
        if all(
            r.done or (i in stop_after and stop_after[i] in r.sent) for i, r in enumerate(rounds)
        ):
            return
        time.sleep(0.05)


def test_secure_round_publishes_the_weighted_mean(api: ApiClient) -> None:
    headers, app, task, devices = _devices(api, 5)
    _, base = api.model(devices[0], task["id"])
    layout = layout_of(base)
    rng = np.random.default_rng(3)
    deltas = [rng.normal(scale=0.5, size=sum(s.size for s in layout)) for _ in devices]
    examples = [10, 20, 30, 40, 1000]
    rounds = _rounds_for(api, devices, task, deltas, examples)
    _drive(rounds)
    assert [r.progress for r in rounds] == ["completed"] * 5
    manifest, new = api.model(devices[0], task["id"])
    assert manifest.version == 1
    w = np.asarray(examples, float) / 1000.0
    expected = flatten(base, layout) + (w[:, None] * np.asarray(deltas)).sum(0) / w.sum()
    np.testing.assert_allclose(flatten(new, layout), expected, atol=1e-3)
    versions = api.http.get(
        f"/api/apps/{app['id']}/tasks/{task['id']}/versions", headers=headers
    ).json()
    assert versions[1]["participants"] == 5
    assert abs(versions[1]["num_examples"] - sum(examples)) <= 1
    assert abs(versions[0]["metrics"]["ndcg@10"] - 0.5) < 1e-3 and versions[0]["reports"] == 5


def test_secure_round_survives_dropouts_at_masked_input(api: ApiClient) -> None:
    headers, app, task, devices = _devices(api, 6, stage_seconds=1.0, upload_seconds=1.0)
    _, base = api.model(devices[0], task["id"])
    layout = layout_of(base)
    rng = np.random.default_rng(5)
    deltas = [rng.normal(scale=0.5, size=sum(s.size for s in layout)) for _ in devices]
    rounds = _rounds_for(api, devices, task, deltas, [100] * 6)
    for dropper in rounds[4:]:
        dropper._vector = None  # these two share their keys, then never send a masked input
    _drive(rounds, max_passes=80)
    survivors = [r for i, r in enumerate(rounds) if i < 4]
    assert [r.progress for r in survivors] == ["completed"] * 4
    _, new = api.model(devices[0], task["id"])
    expected = flatten(base, layout) + np.mean(deltas[:4], axis=0)
    np.testing.assert_allclose(flatten(new, layout), expected, atol=1e-3)
    rounds_api = api.http.get(
        f"/api/apps/{app['id']}/tasks/{task['id']}/rounds", headers=headers
    ).json()
    assert rounds_api[0]["uploads"] == 4 and rounds_api[0]["dropouts"] == 2


def test_secure_round_aborts_below_threshold_and_reveals_nothing(api: ApiClient) -> None:
    headers, app, task, devices = _devices(api, 4, stage_seconds=0.5, upload_seconds=0.5)
    _, base = api.model(devices[0], task["id"])
    size = sum(s.size for s in layout_of(base))
    rounds = _rounds_for(api, devices, task, [np.ones(size)] * 4, [10] * 4)
    _drive(rounds, stop_after={1: "share_keys", 2: "share_keys", 3: "share_keys"}, max_passes=60)
    assert rounds[0].progress in ("failed", "dropped")
    listing = api.http.get(
        f"/api/apps/{app['id']}/tasks/{task['id']}/rounds", headers=headers
    ).json()
    assert listing[0]["state"] == "failed" and "aborted" in listing[0]["failure"]
    assert api.model(devices[0], task["id"])[0].version == 0


def test_plain_upload_and_wrong_party_are_refused_in_secure_rounds(api: ApiClient) -> None:
    from tests.helpers import update_like

    _, app, task, devices = _devices(api, 3)
    _, base = api.model(devices[0], task["id"])
    assignments = [api.checkin(d, task["id"]) for d in devices]
    rid = assignments[0]["round_id"]
    r = api.upload(devices[0], rid, update_like(base, 1.0))
    assert r.status_code == 409 and r.json()["code"] == "secure_round"
    status = api.http.get(f"/v1/device/rounds/{rid}/secagg", headers=devices[0]).json()
    assert status["stage"] == "advertise_keys" and status["party"] == 1
    forged = {
        "round_id": status["config"]["round_id"],
        "sender": 2,
        "cipher_public_key": "A" * 43 + "=",
        "mask_public_key": "B" * 43 + "=",
    }
    r = api.http.post(f"/v1/device/rounds/{rid}/secagg/keys", json=forged, headers=devices[0])
    assert r.status_code == 403 and r.json()["code"] == "wrong_sender"
    r = api.http.post(f"/v1/device/rounds/{rid}/secagg/keys", json={"nope": 1}, headers=devices[0])
    assert r.status_code == 422
    r = api.http.post(f"/v1/device/rounds/{rid}/secagg/masked", json={}, headers=devices[0])
    assert r.status_code == 409 and r.json()["code"] == "wrong_stage"
    outsider = api.enroll(app["token"])
    assert api.http.get(f"/v1/device/rounds/{rid}/secagg", headers=outsider).status_code == 403


def test_curious_server_database_never_holds_an_update_in_the_clear(
    api: ApiClient, database_url: str
) -> None:
    from lerna.core.secure_update import quantizer

    _, _, task, devices = _devices(api, 5)
    _, base = api.model(devices[0], task["id"])
    size = sum(s.size for s in layout_of(base))
    deltas = [np.full(size, 0.25 * (i + 1)) for i in range(5)]
    rounds = _rounds_for(api, devices, task, deltas, [50] * 5)
    privacy = PrivacyConfig.model_validate(SECURE)
    q = quantizer(privacy, 5)
    needles = [
        q.quantize(
            contribution(d, 50, {"ndcg@10": 0.5}, privacy),
            np.random.default_rng(0),
        )[:32].tobytes()
        for d in deltas
    ]
    engine = create_engine(database_url)
    snapshots: list[list[bytes]] = []
    for _ in range(
        30
    ):  # one device step at a time, reading everything the server stored after each
        for r in rounds:
            r.step()
            with engine.connect() as conn:
                blobs = [
                    bytes(b)
                    for (b,) in conn.execute(text("SELECT weighted_sum FROM round_aggregates"))
                ]
                blobs += [
                    bytes(b) for (b,) in conn.execute(text("SELECT body FROM secagg_messages"))
                ]
            snapshots.append(blobs)
        if all(r.done for r in rounds):
            break
    assert [r.progress for r in rounds] == ["completed"] * 5, [r.failure for r in rounds]
    masked_sums = [np.frombuffer(b[0], dtype=np.uint32) for b in snapshots if b and any(b[0])]
    assert masked_sums, "the masked sum was stored while the round ran"
    for total in masked_sums:
        # a clear sum of small updates sits near 0 mod 2^32 (|int32| small); a masked one is
        # uniform, so only about 1/8 of its entries fall within 2^28 of 0
        near_zero = np.abs(total.view(np.int32).astype(np.int64)) < 2**28
        assert near_zero.mean() < 0.4
    for blobs in snapshots:
        for needle in needles:
            assert not any(needle in blob for blob in blobs)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM secagg_messages")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM round_aggregates")).scalar() == 0
    engine.dispose()
