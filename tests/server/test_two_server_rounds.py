"""Two-server rounds through the FL-API's HTTP surface and the real MPC app (mounted at /mpc and
reached in-process over HTTP), on SQLite and PostgreSQL: the published model is the weighted
mean of the accepted uploads, dropouts are simply left out of the set, fewer than t fails the
round without asking the MPC service, the FL-API's database holds only uniform-looking masked
sums, and the MPC service refuses what a malicious FL-API might ask."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from lerna.core.dp import PrivacyConfig
from lerna.core.protocol import TwoServerAssignment
from lerna.core.secure_update import contribution, quantizer, to_lattice
from lerna.core.weights import flatten, layout_of
from lerna.sdk import LernaClient
from lerna.sdk import two_server as device_side
from lerna.sdk.api import DeviceAPI
from lerna.sdk.errors import ProtocolError
from tests.helpers import ApiClient, update_like

TOKEN = "fl-api-token-for-tests-" + "k" * 24
TICKET_KEY = "ticket-key-for-tests-" + "q" * 24
TWO_SERVER = {
    "mode": "two-server",
    "threshold": 3,
    "noise_multiplier": 0,
    "epsilon_budget": None,
    "clip_norm": 100.0,
}
PRIVACY = PrivacyConfig.model_validate(TWO_SERVER)


@pytest.fixture
def platform(database_url: str, tmp_path: Path) -> Iterator[tuple[ApiClient, FastAPI]]:
    """The FL-API with the real MPC app mounted at /mpc, as `lerna serve all` wires them."""
    from lerna.mpc.app import create_app as create_mpc
    from lerna.mpc.settings import MPCSettings
    from lerna.server.app import create_app
    from lerna.server.services.mpc_client import SyncASGITransport
    from lerna.server.settings import Settings

    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        jwt_secret="x" * 40,
        tick_seconds=0.2,
        mpc_token=TOKEN,
        mpc_ticket_key=TICKET_KEY,
        _env_file=None,
    )
    app = create_app(settings)
    mpc = create_mpc(
        MPCSettings(
            data_dir=tmp_path / "mpc",
            master_key="m" * 48,
            ticket_key=TICKET_KEY,
            api_token=TOKEN,
            threshold=3,
        )
    )
    app.mount("/mpc", mpc)
    app.state.mpc_link.attach(SyncASGITransport(mpc))
    with TestClient(app) as client:
        yield ApiClient(client), mpc
    app.state.engine.dispose()
    mpc.state.engine.dispose()


def _setup(
    api: ApiClient, n: int, **config: Any
) -> tuple[dict[str, str], dict[str, Any], dict[str, Any], list[dict[str, str]]]:
    config = {"cohort_size": n, "min_participants": 3, "privacy": TWO_SERVER, **config}
    headers, app, task = api.setup_task(**config)
    return headers, app, task, [api.enroll(app["token"]) for _ in range(n)]


def _device_api(api: ApiClient, device: dict[str, str]) -> DeviceAPI:
    dev = DeviceAPI(api.http)
    dev.credential = device["Authorization"][7:]
    return dev


def _checkin(api: ApiClient, device: dict[str, str], task: dict[str, Any]) -> dict[str, Any]:
    assignment = api.checkin(device, task["id"])
    assert assignment["action"] == "train" and assignment["two_server"] is not None
    return assignment


def _upload(
    api: ApiClient, device: dict[str, str], a: dict[str, Any], vector: np.ndarray, seed: int
) -> Any:
    return device_side.upload(
        _device_api(api, device),
        a["round_id"],
        a["base_version"],
        TwoServerAssignment.model_validate(a["two_server"]),
        vector,
        PRIVACY,
        np.random.default_rng(seed),
    )


def _wait_for(
    api: ApiClient, headers: dict[str, str], app: dict[str, Any], task: dict[str, Any]
) -> dict[str, Any]:
    url = f"/api/apps/{app['id']}/tasks/{task['id']}/rounds"
    for _ in range(100):
        rounds = api.http.get(url, headers=headers).json()
        if rounds and rounds[0]["state"] != "open":
            result: dict[str, Any] = rounds[0]
            return result
        time.sleep(0.1)
    raise AssertionError("the round did not close")


def _answered_sets(mpc: FastAPI) -> int:
    with mpc.state.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM answered_sets")).scalar_one())


def test_two_server_round_publishes_the_weighted_mean(platform: tuple[ApiClient, FastAPI]) -> None:
    api, mpc = platform
    headers, app, task, devices = _setup(api, 5)
    _, base = api.model(devices[0], task["id"])
    layout = layout_of(base)
    rng = np.random.default_rng(3)
    deltas = [rng.normal(scale=0.5, size=sum(s.size for s in layout)) for _ in devices]
    examples = [10, 20, 30, 40, 1000]
    assignments = [_checkin(api, d, task) for d in devices]
    for i, (d, a) in enumerate(zip(devices, assignments, strict=True)):
        vector = contribution(deltas[i], examples[i], {"ndcg@10": 0.5}, PRIVACY)
        assert _upload(api, d, a, vector, 100 + i).uploads == i + 1
    assert _wait_for(api, headers, app, task)["state"] == "completed"
    manifest, new = api.model(devices[0], task["id"])
    assert manifest.version == 1
    w = np.asarray(examples, float) / 1000.0
    expected = flatten(base, layout) + (w[:, None] * np.asarray(deltas)).sum(0) / w.sum()
    np.testing.assert_allclose(flatten(new, layout), expected, atol=1e-3)
    versions = api.http.get(
        f"/api/apps/{app['id']}/tasks/{task['id']}/versions", headers=headers
    ).json()
    assert versions[1]["participants"] == 5 and abs(versions[1]["num_examples"] - 1100) <= 1
    assert abs(versions[0]["metrics"]["ndcg@10"] - 0.5) < 1e-3 and versions[0]["reports"] == 5
    assert _answered_sets(mpc) == 1


def test_dropouts_are_left_out_of_the_set(platform: tuple[ApiClient, FastAPI]) -> None:
    api, mpc = platform
    headers, app, task, devices = _setup(api, 6, selection_seconds=1.5, upload_seconds=1.0)
    _, base = api.model(devices[0], task["id"])
    layout = layout_of(base)
    rng = np.random.default_rng(5)
    deltas = [rng.normal(scale=0.5, size=sum(s.size for s in layout)) for _ in devices]
    assignments = [_checkin(api, d, task) for d in devices]
    for i in range(4):  # devices 4 and 5 were selected, got tickets, and vanished
        _upload(api, devices[i], assignments[i], contribution(deltas[i], 100, {}, PRIVACY), i)
    closed = _wait_for(api, headers, app, task)
    assert closed["state"] == "completed" and closed["uploads"] == 4 and closed["dropouts"] == 2
    _, new = api.model(devices[0], task["id"])
    expected = flatten(base, layout) + np.mean(deltas[:4], axis=0)
    np.testing.assert_allclose(flatten(new, layout), expected, atol=1e-3)
    assert _answered_sets(mpc) == 1


def test_below_threshold_fails_without_asking_the_mpc(platform: tuple[ApiClient, FastAPI]) -> None:
    api, mpc = platform
    headers, app, task, devices = _setup(api, 4, selection_seconds=1.5, upload_seconds=1.0)
    _, base = api.model(devices[0], task["id"])
    size = sum(s.size for s in layout_of(base))
    assignments = [_checkin(api, d, task) for d in devices]
    for i in range(2):
        _upload(
            api,
            devices[i],
            assignments[i],
            contribution(np.ones(size), 10, {}, PRIVACY),
            i,
        )
    closed = _wait_for(api, headers, app, task)
    assert closed["state"] == "failed" and "fewer than the minimum of 3" in closed["failure"]
    assert _answered_sets(mpc) == 0
    assert api.model(devices[0], task["id"])[0].version == 0


def test_database_never_holds_an_unmasked_update(
    platform: tuple[ApiClient, FastAPI], database_url: str
) -> None:
    api, _ = platform
    headers, app, task, devices = _setup(api, 5)
    _, base = api.model(devices[0], task["id"])
    size = sum(s.size for s in layout_of(base))
    assignments = [_checkin(api, d, task) for d in devices]
    q = quantizer(PRIVACY, 5)
    engine = create_engine(database_url)
    stored: list[np.ndarray] = []
    needles = []
    for i, (d, a) in enumerate(zip(devices, assignments, strict=True)):
        vector = contribution(np.full(size, 0.25 * (i + 1)), 50, {"ndcg@10": 0.5}, PRIVACY)
        needles.append(q.quantize(vector, np.random.default_rng(7))[:16].tobytes())
        _upload(api, d, a, vector, 7)
        with engine.connect() as conn:
            blobs = [
                bytes(b) for (b,) in conn.execute(text("SELECT weighted_sum FROM round_aggregates"))
            ]
        stored += [np.frombuffer(b, "<u4") for b in blobs]
        for blob in blobs:
            assert not any(needle in blob for needle in needles)
    engine.dispose()
    assert _wait_for(api, headers, app, task)["state"] == "completed"
    assert len(stored) == 4  # after the last upload the round closed and dropped its sum
    # unmasked, every value would be tiny (near 0 or near 2^32); masked, the top byte is uniform
    top = np.concatenate(stored) >> 24
    assert 0.35 < float(np.mean(top >= 128)) < 0.65
    assert len(np.unique(top)) > 0.5 * min(256, top.size)


def test_malicious_fl_api_gets_no_second_set_and_no_small_set(
    platform: tuple[ApiClient, FastAPI],
) -> None:
    api, _ = platform
    headers, app, task, devices = _setup(api, 3)
    _, base = api.model(devices[0], task["id"])
    size = sum(s.size for s in layout_of(base))
    assignments = [_checkin(api, d, task) for d in devices]
    for i, (d, a) in enumerate(zip(devices, assignments, strict=True)):
        _upload(api, d, a, contribution(np.ones(size), 10, {}, PRIVACY), i)
    assert _wait_for(api, headers, app, task)["state"] == "completed"
    two = assignments[0]["two_server"]
    fl_api = {"Authorization": f"Bearer {TOKEN}"}
    # the FL-API's own credential, against the real MPC app over HTTP: differencing two sets...
    ids = [json.loads(_claims(a["two_server"]["ticket"]))["device_id"] for a in assignments]
    body = {"device_ids": ids[:3], "vector_length": two["vector_length"]}
    r = api.http.post(f"/mpc/v1/rounds/{two['mpc_round_id']}/mask-sum", json=body, headers=fl_api)
    assert r.status_code == 409 and r.json()["code"] == "round_closed"
    # ...or isolating a device in a set below t (a fresh round the MPC service has not answered)
    assignment = _checkin(api, devices[0], task)["two_server"]
    device_side.fetch_seed(
        _device_api(api, devices[0]), TwoServerAssignment.model_validate(assignment)
    )
    body = {"device_ids": [str(ids[0])], "vector_length": assignment["vector_length"]}
    r = api.http.post(
        f"/mpc/v1/rounds/{assignment['mpc_round_id']}/mask-sum", json=body, headers=fl_api
    )
    assert r.status_code == 422 and r.json()["code"] == "set_too_small"
    r = api.http.post(f"/mpc/v1/rounds/{assignment['mpc_round_id']}/mask-sum", json=body)
    assert r.status_code == 401


def _claims(ticket: str) -> str:
    body = ticket.split(".")[1]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def test_replays_bad_uploads_and_foreign_tickets_are_refused(
    platform: tuple[ApiClient, FastAPI],
) -> None:
    api, _ = platform
    _, app, task, devices = _setup(api, 4)
    _, base = api.model(devices[0], task["id"])
    size = sum(s.size for s in layout_of(base))
    assignments = [_checkin(api, d, task) for d in devices[:3]]
    a0 = assignments[0]
    vector = contribution(np.ones(size), 10, {}, PRIVACY)
    _upload(api, devices[0], a0, vector, 0)
    url = f"/v1/device/rounds/{a0['round_id']}/upload/masked"
    with pytest.raises(ProtocolError) as replay:
        _upload(api, devices[0], a0, vector, 0)
    assert replay.value.code == "replay" and replay.value.status == 409
    good = {"round_id": a0["round_id"], "base_version": 0, "upload_id": "u" * 12}
    wrong_length = {**good, "vector": base64.b64encode(b"\0" * 12).decode()}
    r = api.http.post(url, json=wrong_length, headers=devices[1])
    assert r.status_code == 422 and r.json()["code"] == "bad_update"
    r = api.http.post(url, json={**good, "vector": "not base64!"}, headers=devices[1])
    assert r.status_code == 422
    r = api.http.post(url, json={**good, "round_id": 999, "vector": ""}, headers=devices[1])
    assert r.status_code == 422
    r = api.upload(devices[1], a0["round_id"], update_like(base, 1.0))
    assert r.status_code == 409 and r.json()["code"] == "two_server_round"
    outsider = api.enroll(app["token"])
    r = api.http.post(
        url,
        json={
            **good,
            "vector": base64.b64encode(b"\0" * 4 * a0["two_server"]["vector_length"]).decode(),
        },
        headers=outsider,
    )
    assert r.status_code in (403, 409)  # not selected (or, once the cohort is full, told so)
    # tickets: the gateway hands out only the seed of the ticket's own device and round
    t1, t2 = assignments[1]["two_server"]["ticket"], assignments[2]["two_server"]["ticket"]
    forged = ".".join([t1.split(".")[0], t2.split(".")[1], t1.split(".")[2]])
    r = api.http.post("/mpc/gateway/v1/seed", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    from lerna.core.secagg.tickets import issue_ticket

    alien = issue_ticket(b"z" * 40, "1", a0["two_server"]["mpc_round_id"], int(time.time()))
    r = api.http.post("/mpc/gateway/v1/seed", headers={"Authorization": f"Bearer {alien}"})
    assert r.status_code == 401
    s1 = api.http.post("/mpc/gateway/v1/seed", headers={"Authorization": f"Bearer {t1}"}).json()
    s2 = api.http.post("/mpc/gateway/v1/seed", headers={"Authorization": f"Bearer {t2}"}).json()
    assert s1["device_id"] != s2["device_id"] and s1["seed"] != s2["seed"]
    assert s1["round_id"] == a0["two_server"]["mpc_round_id"]


def test_central_noise_comes_from_the_mpc_and_devices_add_none(
    platform: tuple[ApiClient, FastAPI],
) -> None:
    noisy = {**TWO_SERVER, "noise_multiplier": 0.5, "clip_norm": 1.0}
    privacy = PrivacyConfig.model_validate(noisy)
    # in two-server mode devices add no noise: their lattice encoding is their quantised
    # contribution alone (the MPC service adds all of it)
    delta = np.linspace(-0.1, 0.1, 50)
    vec = contribution(delta, 1000, {}, privacy)
    np.testing.assert_array_equal(
        to_lattice(vec, privacy, 4, np.random.default_rng(0)),
        quantizer(privacy, 4).quantize(vec, np.random.default_rng(0)),
    )
    api, _ = platform
    headers, app, task, devices = _setup(api, 4, privacy=noisy)
    _, base = api.model(devices[0], task["id"])
    layout = layout_of(base)
    size = sum(s.size for s in layout)
    assignments = [_checkin(api, d, task) for d in devices]
    for i, (d, a) in enumerate(zip(devices, assignments, strict=True)):
        vector = contribution(np.full(size, 0.01), 1000, {}, privacy)
        device_side.upload(
            _device_api(api, d),
            a["round_id"],
            0,
            TwoServerAssignment.model_validate(a["two_server"]),
            vector,
            privacy,
            np.random.default_rng(i),
        )
    assert _wait_for(api, headers, app, task)["state"] == "completed"
    _, new = api.model(devices[0], task["id"])
    change = flatten(new, layout) - flatten(base, layout)
    # the sum of 4 weights-of-1 updates of 0.01 plus N(0, 0.5^2) per coordinate, over about 4
    assert 0.03 < float(np.std(change)) < 0.5, "the MPC service's central noise is in the sum"


def test_sdk_clients_train_a_two_server_round(
    platform: tuple[ApiClient, FastAPI], tmp_path: Path
) -> None:
    api, _ = platform
    headers, app, task = api.setup_task(
        cohort_size=3, min_participants=3, model_type="logistic", privacy=TWO_SERVER
    )
    t0 = datetime(2024, 5, 1, 18, 0, tzinfo=UTC)
    clients = []
    for i in range(3):
        c = LernaClient(
            app["token"], tmp_path / f"d{i}", http=api.http, device_uid=f"dev-{i}", seed=i
        )
        c.start()
        c.record_history(
            [(t0 + timedelta(hours=h), f"item{h % 12}", h % 2 == 0) for h in range(20)]
        )
        clients.append(c)
    outcomes = [c.round_step() for c in clients]
    assert [o.status for o in outcomes] == ["uploaded"] * 3
    assert _wait_for(api, headers, app, task)["state"] == "completed"
    assert clients[0].sync() is True and clients[0].version == 1
    for c in clients:
        c.stop()


def test_serve_all_mounts_the_mpc_with_the_fl_apis_generated_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lerna.cli.serving import build_app
    from lerna.server.settings import Settings

    monkeypatch.setenv("LERNA_DATA_DIR", str(tmp_path / "rec"))
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'lerna.db'}",
        jwt_secret="x" * 40,
        _env_file=None,
    )
    app = build_app("all", settings)
    recommender = app.state.recommender_transport.app
    try:
        link = app.state.mpc_link
        assert link.available and link.gateway_url == "/mpc/gateway/v1"
        assert (tmp_path / "data" / "mpc_token").read_text() == link.token
        assert (tmp_path / "data" / "mpc_master_key").stat().st_mode & 0o077 == 0
        with TestClient(app) as http:
            assert http.get("/mpc/healthz").json() == {"status": "ok"}
            r = http.post(
                "/mpc/v1/rounds/r-1/mask-sum", json={"device_ids": ["1"], "vector_length": 1}
            )
            assert r.status_code == 401  # not the FL-API's token
            ok = {"Authorization": f"Bearer {link.token}"}
            r = http.post(
                "/mpc/v1/rounds/r-1/mask-sum",
                json={"device_ids": ["1"], "vector_length": 1},
                headers=ok,
            )
            assert r.status_code == 422 and r.json()["code"] == "set_too_small"
    finally:
        recommender.state.jobs.shutdown()
        recommender.state.service.store.engine.dispose()
        app.state.engine.dispose()


def test_a_deployment_without_an_mpc_service_refuses_two_server_check_ins(
    database_url: str, tmp_path: Path
) -> None:
    from lerna.server.app import create_app
    from lerna.server.settings import Settings

    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        jwt_secret="x" * 40,
        mpc_token=TOKEN,
        mpc_ticket_key=TICKET_KEY,
        _env_file=None,
    )
    app = create_app(settings)
    with TestClient(app) as http:
        api = ApiClient(http)
        _, _, task, devices = _setup(api, 3)
        r = http.post(f"/v1/device/tasks/{task['id']}/checkin", headers=devices[0])
        assert r.status_code == 503 and r.json()["code"] == "mpc_unavailable"
        assert "LERNA_MPC_URL" in r.json()["message"]
    app.state.engine.dispose()
    if database_url.startswith("sqlite"):
        return  # the embedded default generates the shared secrets into its data dir
    with pytest.raises(RuntimeError, match="LERNA_MPC_TOKEN"):
        create_app(
            Settings(
                data_dir=tmp_path / "d2",
                database_url=database_url,
                jwt_secret="x" * 40,
                mpc_url="http://mpc:8100",
                _env_file=None,
            )
        )
