"""The SDK against the real FL-API (in-process transport), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from lerna.core.weights import load_archive
from lerna.sdk import ConsentError, InputError, LernaClient, ProtocolError
from tests.helpers import ApiClient

T0 = datetime(2024, 5, 1, 18, 0, tzinfo=UTC)


def _client(api: ApiClient, token: str, path: Path, uid: str, seed: int = 0) -> LernaClient:
    return LernaClient(token, path, http=api.http, device_uid=uid, seed=seed).start()


def _history(
    n: int, liked_genre_items: list[str], other: list[str]
) -> list[tuple[datetime, str, bool]]:
    rows = []
    for i in range(n):
        item = (
            liked_genre_items[i % len(liked_genre_items)] if i % 2 == 0 else other[i % len(other)]
        )
        rows.append((T0 + timedelta(hours=i), item, i % 2 == 0))
    return rows


def test_devices_train_upload_and_pick_up_new_version(api: ApiClient, tmp_path: Path) -> None:
    headers, app, task = api.setup_task(cohort_size=3, min_participants=3, model_type="logistic")
    clients = [_client(api, app["token"], tmp_path / f"d{i}", f"dev-{i}", seed=i) for i in range(3)]
    news = [f"item{i}" for i in range(0, 12, 3)]
    rest = [f"item{i}" for i in range(12) if i % 3]
    for c in clients:
        c.record_history(_history(30, news, rest))
    outcomes = [c.train_round() for c in clients]
    assert [o.status for o in outcomes] == ["uploaded"] * 3
    assert all(o.num_examples == 24 for o in outcomes), (
        "the newest 20% is held out, never trained on"
    )
    assert clients[0].sync() is True and clients[0].version == 1
    versions = api.http.get(
        f"/api/apps/{app['id']}/tasks/{task['id']}/versions", headers=headers
    ).json()
    assert versions[1]["participants"] == 3 and versions[1]["num_examples"] == 72
    ranked = clients[0].top_n(3, when=T0, exclude_seen=False)
    assert len(ranked) == 3 and all(item in news for item in ranked), ranked


def test_personal_state_survives_restart_and_is_never_uploaded(
    api: ApiClient, tmp_path: Path
) -> None:
    _, app, _ = api.setup_task(cohort_size=1, min_participants=1, model_type="logistic")
    sent: list[bytes] = []
    api.http.event_hooks["request"].append(
        lambda req: sent.append(req.read()) if "/upload" in req.url.path else None
    )
    client = _client(api, app["token"], tmp_path / "d", "dev-p")
    client.record_history(_history(20, ["item0", "item3"], ["item1", "item2"]))
    assert client.train_round().status == "uploaded"
    personal = client.model.personal_state()  # type: ignore[union-attr]
    assert np.abs(personal["p"]).sum() > 0
    manifest, arrays = load_archive(sent[0])
    assert set(arrays) == {"w", "b"} and "p" not in arrays, "personal state must never be uploaded"
    assert manifest.kind == "update"
    body = sent[0]
    assert b"item0" not in body and b"item3" not in body, "no raw events in the upload"
    client.store.close()
    again = _client(api, app["token"], tmp_path / "d", "dev-p")
    np.testing.assert_array_equal(again.model.personal_state()["p"], personal["p"])  # type: ignore[union-attr]
    again.set_consent(False)
    assert np.abs(again.model.personal_state()["p"]).sum() == 0  # type: ignore[union-attr]
    assert again.store.count_events() == 0
    assert again.train_round().status == "skipped"
    with pytest.raises(ConsentError):
        again.record_history(_history(2, ["item0"], ["item1"]))


def test_bad_inputs_are_rejected_and_store_stays_intact(api: ApiClient, tmp_path: Path) -> None:
    _, app, _ = api.setup_task(model_type="logistic")
    client = _client(api, app["token"], tmp_path / "d", "dev-x")
    client.capture("item1", True, when=T0)
    with pytest.raises(InputError):
        client.set_context([1.0])  # the schema has no custom features
    with pytest.raises(InputError):
        client.add_items({"new": {"colour": "red"}})
    with pytest.raises(InputError):
        client.top_n(0)
    with pytest.raises(InputError):
        client.set_device_state(battery=float("nan"))
    assert client.store.count_events() == 1
    client.add_items({"fresh": {"genre": "news", "year": 2024}, "item1": {"genre": "sport"}})
    assert set(client.top_n(5, exclude_seen=False)) == {"fresh", "item1"}


def test_mismatched_model_is_refused_and_previous_kept(api: ApiClient, tmp_path: Path) -> None:
    _, app, _ = api.setup_task(model_type="logistic")
    client = _client(api, app["token"], tmp_path / "d", "dev-m")
    before = client.model.global_weights()  # type: ignore[union-attr]
    from lerna.core.weights import Manifest, dump_archive, layout_of

    wrong = {"w": np.ones(3, np.float32), "b": np.ones(1, np.float32)}
    archive = dump_archive(
        Manifest(kind="model", model="logistic", version=9, arrays=layout_of(wrong)), wrong
    )
    with pytest.raises(ProtocolError):
        client._install(archive)
    with pytest.raises(ProtocolError):
        client._install(b"garbage")
    assert client.version == 0
    after = client.model.global_weights()  # type: ignore[union-attr]
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_rejected_app_token_disables_the_library(api: ApiClient, tmp_path: Path) -> None:
    from lerna.sdk import AuthError

    with pytest.raises(AuthError):
        LernaClient("app_wrong", tmp_path / "d", http=api.http).start()


def test_blacklisted_predictions_fall_back_to_app_order(api: ApiClient, tmp_path: Path) -> None:
    headers, app, _ = api.setup_task(model_type="logistic")
    client = _client(api, app["token"], tmp_path / "d", "dev-b")
    device = api.http.get(f"/api/apps/{app['id']}/devices", headers=headers).json()[0]
    api.http.put(
        f"/api/apps/{app['id']}/devices/{device['id']}/blacklist",
        json={"block_training": True, "block_predictions": True},
        headers=headers,
    )
    client.refresh_config()
    client.add_items({"b": {"genre": "news"}, "a": {"genre": "music"}})
    assert client.top_n(2) == ["b", "a"]
    assert client.train_round().reason == "training disabled for this device"


def test_server_unreachable_is_a_server_error(tmp_path: Path) -> None:
    from lerna.sdk import ServerError

    http = httpx.Client(base_url="http://127.0.0.1:9", timeout=1)
    with pytest.raises(ServerError):
        LernaClient("app_x", tmp_path / "d", http=http).start()
