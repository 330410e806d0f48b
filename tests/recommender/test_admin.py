"""Engines, jobs, auth roles, GDPR, persistence and the bind rule, over HTTP."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lerna.recommender.app import create_app
from lerna.recommender.errors import UnsafeBindError
from lerna.recommender.settings import RecommenderSettings, check_bind_allowed

from .helpers import Harness, SyncClient, buy_events

ADMIN, CLIENT, OTHER = "admin-token-1", "client-token-1", "other-token-1"


def test_liveness(client: SyncClient) -> None:
    assert client.get("/").status_code == 200


def test_engine_lifecycle(harness: Harness) -> None:
    client = harness.client
    harness.create("shop", num=7)
    assert client.post("/engines", json={"engineId": "shop", "algorithm": {"indicators": [{"name": "buy"}]}}).status_code == 409  # fmt: skip
    assert client.get("/engines").json() == ["shop"]
    body = client.get("/engines/shop").json()
    assert body["config"]["algorithm"]["num"] == 7
    assert body["jobs"] == [] and body["model"] is None
    new = {"engineId": "shop", "algorithm": {"indicators": [{"name": "buy"}], "num": 3}}
    assert client.post("/engines/shop/configs", json=new).status_code == 200
    assert client.get("/engines/shop").json()["config"]["algorithm"]["num"] == 3
    assert client.post("/engines/shop/configs", json={**new, "engineId": "x"}).status_code == 400
    harness.send(buy_events())
    assert len(harness.items(user="stranger")) == 3  # the new num applies
    assert client.delete("/engines/shop").status_code == 200
    assert client.get("/engines").json() == []
    harness.create("shop")  # a re-created engine starts empty
    assert client.get("/engines/shop/entities/u1").status_code == 404


def test_engine_config_is_validated(client: SyncClient) -> None:
    bad = [
        {"engineId": "bad id!", "algorithm": {"indicators": [{"name": "buy"}]}},
        {"engineId": "e", "algorithm": {"indicators": []}},
        {
            "engineId": "e",
            "algorithm": {"indicators": [{"name": "a"}, {"name": "b", "aliases": ["a"]}]},
        },
        {
            "engineId": "e",
            "algorithm": {"indicators": [{"name": "a"}], "blacklistIndicators": ["z"]},
        },
        {
            "engineId": "e",
            "algorithm": {
                "indicators": [{"name": "a"}],
                "rankings": [{"type": "popular", "duration": "3 fortnights"}],
            },
        },
    ]
    for config in bad:
        r = client.post("/engines", json=config)
        assert r.status_code == 400, config
    assert client.get("/engines").json() == []


def test_training_job_reports_success_and_the_model(harness: Harness) -> None:
    harness.create()
    harness.send(buy_events())
    job = harness.train()
    assert "items=5" in job["comment"]
    info = harness.client.get("/engines/shop").json()
    assert [j["status"] for j in info["jobs"]] == ["successful"]
    assert info["model"]["users"] == 6


def test_cancel_a_queued_job(harness: Harness) -> None:
    harness.create()
    harness.send(buy_events())
    gate = threading.Event()
    harness.client.app.state.jobs.executor.submit(gate.wait)  # occupy the only worker
    job = harness.client.post("/engines/shop/jobs").json()
    assert job["status"] == "queued"
    cancelled = harness.client.delete(f"/engines/shop/jobs/{job['jobId']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    gate.set()
    harness.client.app.state.jobs.executor.submit(lambda: None).result(timeout=5)
    assert harness.client.get(f"/engines/shop/jobs/{job['jobId']}").json()["status"] == "cancelled"
    assert harness.client.get("/engines/shop").json()["model"] is None  # never trained
    again = harness.client.delete(f"/engines/shop/jobs/{job['jobId']}")
    assert again.status_code == 409
    assert harness.client.delete("/engines/shop/jobs/no-such-job").status_code == 404


def test_cancelled_job_keeps_the_old_model(shop: Harness) -> None:
    trained_at = shop.client.get("/engines/shop").json()["model"]["trainedAt"]
    shop.send(buy_events({"u1": ["z"]}))
    gate = threading.Event()
    jobs = shop.client.app.state.jobs
    jobs.executor.submit(gate.wait)
    job = shop.client.post("/engines/shop/jobs").json()
    shop.client.delete(f"/engines/shop/jobs/{job['jobId']}")
    gate.set()
    jobs.executor.submit(lambda: None).result(timeout=5)
    assert shop.client.get("/engines/shop").json()["model"]["trainedAt"] == trained_at


def auth_app(tmp_path: Path) -> SyncClient:
    settings = RecommenderSettings(
        data_dir=tmp_path, admin_tokens=[ADMIN], client_tokens={CLIENT: ["shop"], OTHER: ["*"]}
    )
    return SyncClient(create_app(settings))


def test_auth_roles(tmp_path: Path) -> None:
    client = auth_app(tmp_path)
    try:
        admin, shop_client, any_client = Harness(client, ADMIN), Harness(client, CLIENT), Harness(client, OTHER)  # fmt: skip
        assert client.get("/").status_code == 200  # liveness stays open
        assert client.get("/engines").status_code == 401
        assert client.get("/engines", headers={"Authorization": "Bearer wrong-token"}).status_code == 401  # fmt: skip
        admin.create("shop")
        admin.create("news")
        shop_client.send(buy_events())
        assert shop_client.items(user="u1") == ["c", "d", "e"]  # untrained: catalogue by id
        assert client.post("/engines/news/queries", json={}, headers=shop_client.headers).status_code == 403  # fmt: skip
        assert client.post("/engines/news/queries", json={}, headers=any_client.headers).status_code == 200  # fmt: skip
        for method, url in (("GET", "/engines"), ("POST", "/engines/shop/jobs"),
                            ("DELETE", "/engines/shop"), ("GET", "/engines/shop/entities/u1"),
                            ("DELETE", "/engines/shop/entities/u1")):  # fmt: skip
            r = client.request(method, url, headers=shop_client.headers)
            assert r.status_code == 403, (method, url)
            assert r.json()["error"] == "forbidden"
        admin.train("shop")
    finally:
        client.close()


def test_gdpr_export_and_erase(shop: Harness) -> None:
    exported = shop.client.get("/engines/shop/entities/u3").json()
    assert [e["targetEntityId"] for e in exported["events"]] == ["c", "b", "a"]  # newest first
    assert exported["events"][0]["eventTime"].startswith("2023-11-14T22:")
    assert shop.client.delete("/engines/shop/entities/u3").status_code == 200
    assert shop.client.get("/engines/shop/entities/u3").status_code == 404
    shop.train()
    # u3 was the only a-c and b-c link: u1 (a, b) no longer gets c from evidence
    assert shop.query(user="u1")[0]["score"] == 0.0


def test_state_survives_a_restart(settings: RecommenderSettings) -> None:
    first = Harness(SyncClient(create_app(settings)))
    first.create(num=10)
    first.send(buy_events())
    first.set_item("c", color=["green"])
    first.train()
    before = first.query(user="u1")
    first.client.close()
    second = Harness(SyncClient(create_app(settings)))
    try:
        assert second.query(user="u1") == before
        assert before[0]["props"] == {"color": ["green"]}
    finally:
        second.client.close()


def test_settings_defaults_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LERNA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LERNA_RECOMMENDER_CLIENT_TOKENS", '{"abcdefgh": ["shop"]}')
    settings = RecommenderSettings()
    assert settings.port == 9090 and settings.host == "127.0.0.1"
    assert settings.database_url == f"sqlite:///{tmp_path / 'recommender.db'}"
    assert settings.client_tokens == {"abcdefgh": ["shop"]}
    assert "abcdefgh" not in repr(settings)
    with pytest.raises(ValueError, match="at least 8"):
        RecommenderSettings(admin_tokens=["short"])


def test_refuses_public_bind_without_auth(tmp_path: Path) -> None:
    check_bind_allowed(RecommenderSettings(data_dir=tmp_path, host="127.0.0.1"))
    check_bind_allowed(RecommenderSettings(data_dir=tmp_path, host="::1"))
    check_bind_allowed(RecommenderSettings(data_dir=tmp_path, host="localhost"))
    with pytest.raises(UnsafeBindError, match=r"0\.0\.0\.0"):
        check_bind_allowed(RecommenderSettings(data_dir=tmp_path, host="0.0.0.0"))
    check_bind_allowed(RecommenderSettings(data_dir=tmp_path, host="0.0.0.0", admin_tokens=[ADMIN]))


def test_cancel_a_job_while_it_trains(shop: Harness) -> None:
    """Over HTTP: the job is held at its second checkpoint (inside training), cancelled with
    DELETE, released; it ends cancelled and queries keep the old model."""
    client = shop.client
    before = shop.query(user="u1")
    trained_at = client.get("/engines/shop").json()["model"]["trainedAt"]
    shop.send(buy_events({"u1": ["d"], "u7": ["d", "e"], "u8": ["d", "e"]}))
    reached, release = threading.Event(), threading.Event()

    def hold(_job: str, n: int) -> None:
        if n == 2:
            reached.set()
            assert release.wait(timeout=10)

    client.app.state.jobs.on_checkpoint = hold
    job = client.post("/engines/shop/jobs").json()
    assert reached.wait(timeout=10)
    url = f"/engines/shop/jobs/{job['jobId']}"
    assert client.get(url).json()["status"] == "executing"
    r = client.delete(url)
    assert r.status_code == 200 and r.json()["status"] == "executing"  # asked, not yet stopped
    release.set()
    client.app.state.jobs.executor.submit(lambda: None).result(timeout=10)
    final = client.get(url).json()
    assert final["status"] == "cancelled" and final["comment"] == "cancelled while executing"
    assert client.get("/engines/shop").json()["model"]["trainedAt"] == trained_at
    assert [r["item"] for r in shop.query(user="u1")] == [  # new events count, old correlators
        r["item"] for r in before if r["item"] != "d"
    ]
