"""The recommender inside the platform: the FL-API links a task to an engine, forwards the
catalogue, serves devices candidates and forwards their events under a pseudonym; the SDK
re-ranks server candidates. Real FL-API and real recommender, joined by an ASGI transport
(as ``lerna serve all`` joins them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from lerna.recommender.app import create_app as create_recommender
from lerna.recommender.settings import RecommenderSettings
from lerna.sdk.recommendations import fuse
from lerna.server.app import create_app as create_fl_api
from lerna.server.settings import Settings
from tests.helpers import CATALOG, ApiClient


def _settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'lerna.db'}",
        jwt_secret="x" * 40, tick_seconds=0.2, _env_file=None, **extra,
    )  # fmt: skip


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[ApiClient, httpx.Client]]:
    """The FL-API with the recommender joined in-process; also a client of the recommender."""
    recommender = create_recommender(RecommenderSettings(data_dir=tmp_path / "rec"))
    app = create_fl_api(_settings(tmp_path))
    app.state.recommender_transport = httpx.ASGITransport(app=recommender)
    with TestClient(app) as fl, TestClient(recommender) as rec:
        yield ApiClient(fl), rec
    recommender.state.jobs.shutdown()
    recommender.state.service.store.engine.dispose()
    app.state.engine.dispose()


def _link(api: ApiClient, forward: bool) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    headers, app, task = api.setup_task()
    r = api.http.put(f"/api/apps/{app['id']}/recommender",
                     json={"engine_id": "news", "forward_events": forward}, headers=headers)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["items_forwarded"] == len(CATALOG)
    return headers, app, task


def _train(api: ApiClient, headers: dict[str, str], app_id: int, rec: httpx.Client) -> None:
    r = api.http.post(f"/api/apps/{app_id}/recommender/train", headers=headers)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 10
    while rec.get(f"/engines/news/jobs/{r.json()['job_id']}").json()["status"] != "successful":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_feature_off_answers_404_recommender_off(tmp_path: Path) -> None:
    with TestClient(create_fl_api(_settings(tmp_path))) as http:
        api = ApiClient(http)
        headers, app, task = api.setup_task()
        r = http.put(f"/api/apps/{app['id']}/recommender", json={"engine_id": "e"}, headers=headers)
        assert r.status_code == 404 and r.json()["code"] == "recommender_off"
        device = api.enroll(app["token"])
        r = http.get(f"/v1/device/tasks/{task['id']}/candidates", headers=device)
        assert r.status_code == 404 and r.json()["code"] == "recommender_off"
        http.app.state.engine.dispose()  # type: ignore[attr-defined]


def test_link_creates_the_engine_and_forwards_the_catalog(
    platform: tuple[ApiClient, httpx.Client],
) -> None:
    api, rec = platform
    headers, app, _ = _link(api, forward=False)
    assert rec.get("/engines").json() == ["news"]
    news = rec.post("/engines/news/queries",
                    json={"rules": [{"name": "genre", "values": ["news"], "bias": -1}]})  # fmt: skip
    assert sorted(r["item"] for r in news.json()["result"]) == sorted(
        i for i, m in CATALOG.items() if m["genre"] == "news"
    )
    again = api.http.put(f"/api/apps/{app['id']}/recommender",
                         json={"engine_id": "news", "forward_events": True}, headers=headers)  # fmt: skip
    assert again.json()["engine_created"] is False and again.json()["forward_events"] is True
    got = api.http.get(f"/api/apps/{app['id']}/recommender", headers=headers).json()
    assert got["engine_id"] == "news" and got["forward_events"] is True


def test_without_forwarding_devices_get_popular_candidates_and_cannot_send_events(
    platform: tuple[ApiClient, httpx.Client],
) -> None:
    api, _ = platform
    _, app, task = _link(api, forward=False)
    device = api.enroll(app["token"])
    r = api.http.get(f"/v1/device/tasks/{task['id']}/candidates?num=5", headers=device)
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 5 and r.json()["personalized"] is False
    events = {"events": [{"event": "buy", "item": "item1"}]}
    r = api.http.post(f"/v1/device/tasks/{task['id']}/recommendation-events", json=events,
                      headers=device)  # fmt: skip
    assert r.status_code == 403 and r.json()["code"] == "forwarding_off"


def test_forwarded_events_personalize_candidates_under_a_pseudonym(
    platform: tuple[ApiClient, httpx.Client],
) -> None:
    api, rec = platform
    headers, app, task = _link(api, forward=True)
    url = f"/v1/device/tasks/{task['id']}/recommendation-events"
    uids = [f"device-uid-{k}" for k in range(4)]
    devices = [api.enroll(app["token"], uid) for uid in uids]
    for device in devices[:3]:  # three devices buy item3 and item7
        body = {"events": [{"event": "buy", "item": "item3"}, {"event": "buy", "item": "item7"}]}
        r = api.http.post(url, json=body, headers=device)
        assert r.status_code == 202 and r.json() == {"accepted": 2}
    r = api.http.post(url, json={"events": [{"event": "buy", "item": "item3"}]}, headers=devices[3])
    assert r.status_code == 202
    _train(api, headers, app["id"], rec)
    cands = api.http.get(f"/v1/device/tasks/{task['id']}/candidates?num=3", headers=devices[3])
    assert cands.json()["personalized"] is True
    assert cands.json()["items"][0]["item"] == "item7"  # the others' co-purchase
    # the recommender holds pseudonyms only: no uid, no device id
    store = rec.app.state.service.store  # type: ignore[attr-defined]
    users = {u for u, _, _, _ in store.training_events("news", ["buy"], None)}
    assert len(users) == 4 and all(u.startswith("d-") for u in users)
    assert not users & {*uids, *(str(k) for k in range(10))}


def test_bad_device_input_is_refused_before_forwarding(
    platform: tuple[ApiClient, httpx.Client],
) -> None:
    api, rec = platform
    _, app, task = _link(api, forward=True)
    device = api.enroll(app["token"])
    url = f"/v1/device/tasks/{task['id']}/recommendation-events"
    for body, code in (
        ({"events": [{"event": "buy", "item": "not-in-catalog"}]}, "unknown_item"),
        ({"events": [{"event": "$delete", "item": "item1"}]}, "invalid"),
        ({"events": []}, "invalid"),
    ):
        r = api.http.post(url, json=body, headers=device)
        assert r.status_code == 422 and r.json()["code"] == code, r.text
    r = api.http.get(f"/v1/device/tasks/{task['id']}/candidates?num=0", headers=device)
    assert r.status_code == 422
    assert rec.get("/engines/news").json()["jobs"] == []
    other_headers, other_app, _ = api.setup_task()
    stranger = api.enroll(other_app["token"])
    r = api.http.get(f"/v1/device/tasks/{task['id']}/candidates", headers=stranger)
    assert r.status_code == 404  # another app's task
    r = api.http.put(f"/api/apps/{app['id']}/recommender", json={"engine_id": "x"},
                     headers=other_headers)  # fmt: skip
    assert r.status_code in (403, 404)


def test_fuse_blends_server_order_with_device_order() -> None:
    # server order a, b, c; the device orders c, b, a
    device = np.array([0.1, 0.2, 0.9])
    even = fuse(device, k=1.0, device_weight=1.0)
    np.testing.assert_allclose(even, [1 / 2 + 1 / 4, 1 / 3 + 1 / 3, 1 / 4 + 1 / 2])
    assert list(np.argsort(-even, kind="stable")) == [0, 2, 1]  # a, c tie: server order
    device_led = fuse(device, k=1.0, device_weight=2.0)
    assert list(np.argsort(-device_led, kind="stable")) == [2, 0, 1]


def test_serve_all_joins_the_fl_api_to_the_mounted_recommender(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lerna.cli.serving import build_app

    monkeypatch.setenv("LERNA_DATA_DIR", str(tmp_path / "rec"))
    app = build_app("all", _settings(tmp_path))
    recommender = app.state.recommender_transport.app
    try:
        with TestClient(app) as http:
            api = ApiClient(http)
            headers, linked, task = api.setup_task()
            r = http.put(f"/api/apps/{linked['id']}/recommender", json={"engine_id": "feed"},
                         headers=headers)  # fmt: skip
            assert r.status_code == 200 and r.json()["engine_created"] is True, r.text
            assert http.get("/recommender/engines").json() == ["feed"]  # the same service
            mounted = http.post("/recommender/engines/feed/queries", json={"num": 2})
            assert len(mounted.json()["result"]) == 2  # the query fast path under a mount
            device = api.enroll(linked["token"])
            r = http.get(f"/v1/device/tasks/{task['id']}/candidates?num=4", headers=device)
            assert len(r.json()["items"]) == 4
    finally:
        recommender.state.jobs.shutdown()
        recommender.state.service.store.engine.dispose()
        app.state.engine.dispose()


def test_sdk_top_n_reranks_server_candidates(
    platform: tuple[ApiClient, httpx.Client], tmp_path: Path
) -> None:
    from lerna.sdk.client import LernaClient
    from lerna.sdk.errors import InputError
    from lerna.sdk.recommendations import get_recommendations, submit_recommendation_event

    api, _ = platform
    _, app, _ = _link(api, forward=True)
    client = LernaClient(app["token"], tmp_path / "dev", http=api.http, device_uid="u1").start()
    server = [c.item for c in get_recommendations(client, 50)]
    assert len(server) == len(CATALOG)  # the whole (12-item) catalogue, server order
    when = datetime(2024, 5, 6, 20, tzinfo=UTC)
    top = client.top_n(5, when=when, candidates="server")
    assert len(top) == 5 and set(top) <= set(server)
    assert client.model is not None
    rows = np.asarray([client.index[i] for i in server])
    device = client.model.score(client._context(when), client.catalog.features[rows], rows)
    assert top == [server[i] for i in np.argsort(-fuse(device), kind="stable")[:5]]
    with pytest.raises(InputError, match="invalid recommendation event"):
        submit_recommendation_event(client, "$delete", "item2")  # refused before it is sent
    submit_recommendation_event(client, "buy", "item2")
    assert "item2" not in [c.item for c in get_recommendations(client, 50)]  # own purchase
