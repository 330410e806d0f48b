"""The MPC service over HTTP (in-process ASGI): credentials, one set per round, at least t."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from lerna.core.secagg import two_server
from lerna.core.secagg.tickets import issue_ticket
from lerna.mpc.app import create_app
from lerna.mpc.settings import MPCSettings

TICKET_KEY = "t" * 8 + "ticket-key-for-tests-only-0123456789"
API_TOKEN = "a" * 8 + "api-token-for-tests-only-0123456789"
MASTER = "m" * 8 + "master-key-for-tests-only-0123456789"
ROUND = "app-1:round-1"
D = 2000


@pytest.fixture
def settings(tmp_path: Path) -> MPCSettings:
    return MPCSettings(
        data_dir=tmp_path,
        master_key=SecretStr(MASTER),
        ticket_key=SecretStr(TICKET_KEY),
        api_token=SecretStr(API_TOKEN),
        threshold=5,
        min_noise_multiplier=0.0,
    )


@pytest.fixture
def client(settings: MPCSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def _ticket(device: str, round_id: str = ROUND, now: int | None = None) -> dict[str, str]:
    t = issue_ticket(TICKET_KEY.encode(), device, round_id, now=now or int(time.time()))
    return {"Authorization": f"Bearer {t}"}


API = {"Authorization": f"Bearer {API_TOKEN}"}


def _seed(client: TestClient, device: str, round_id: str = ROUND) -> bytes:
    r = client.post("/gateway/v1/seed", headers=_ticket(device, round_id))
    assert r.status_code == 200, r.text
    return base64.b64decode(r.json()["seed"])


def _ask(client: TestClient, devices: list[str], round_id: str = ROUND, **extra: object) -> object:
    body = {"device_ids": devices, "vector_length": D, **extra}
    return client.post(f"/v1/rounds/{round_id}/mask-sum", json=body, headers=API)


def test_settings_refuse_missing_or_weak_secrets(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="LERNA_MPC_MASTER_KEY must be set"):
        MPCSettings(
            data_dir=tmp_path, ticket_key=SecretStr(TICKET_KEY), api_token=SecretStr(API_TOKEN)
        )
    with pytest.raises(ValidationError, match="at least 32"):
        MPCSettings(
            data_dir=tmp_path,
            master_key=SecretStr("changeme"),
            ticket_key=SecretStr(TICKET_KEY),
            api_token=SecretStr(API_TOKEN),
        )
    demo = MPCSettings(data_dir=tmp_path, demo=True)
    assert len(demo.secret("master_key")) >= 32
    assert demo.secret("master_key") != MPCSettings(data_dir=tmp_path, demo=True).secret(
        "master_key"
    )
    assert demo.db_url.endswith("mpc.db")


def test_round_trip_cancels_masks(client: TestClient) -> None:
    rng = np.random.default_rng(0)
    devices = [f"dev-{i}" for i in range(8)]
    updates = {d: rng.integers(0, 2**32, D, dtype=np.uint32) for d in devices}
    masked = {d: two_server.mask_update(_seed(client, d), updates[d], D) for d in devices}
    assert _seed(client, "dev-0") == _seed(client, "dev-0")  # idempotent
    accepted = devices[:6]
    r = _ask(client, accepted)
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["device_count"] == 6 and body["noise_added"] is False
    total = np.frombuffer(base64.b64decode(body["negated_mask_sum"]), dtype="<u4").astype(np.uint32)
    expected = np.zeros(D, dtype=np.uint32)
    for d in accepted:
        total += masked[d]
        expected += updates[d]
    np.testing.assert_array_equal(total, expected)


def test_binary_answer_carries_the_same_sum(client: TestClient) -> None:
    """``Accept: application/octet-stream`` (what the FL-API sends) gets the raw vector."""
    rng = np.random.default_rng(1)
    devices = [f"dev-{i}" for i in range(6)]
    updates = {d: rng.integers(0, 2**32, D, dtype=np.uint32) for d in devices}
    masked = {d: two_server.mask_update(_seed(client, d), updates[d], D) for d in devices}
    r = client.post(
        f"/v1/rounds/{ROUND}/mask-sum",
        json={"device_ids": devices, "vector_length": D},
        headers={**API, "Accept": "application/octet-stream"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-lerna-device-count"] == "6" and r.headers["x-lerna-vector-length"] == str(D)
    assert r.headers["x-lerna-noise-added"] == "0" and len(r.content) == 4 * D
    total = np.frombuffer(r.content, dtype="<u4").astype(np.uint32)
    for d in devices:
        total += masked[d]
    np.testing.assert_array_equal(total, sum(updates.values(), np.zeros(D, dtype=np.uint32)))
    again = client.post(
        f"/v1/rounds/{ROUND}/mask-sum",
        json={"device_ids": devices, "vector_length": D},
        headers={**API, "Accept": "application/octet-stream"},
    )
    assert again.status_code == 409 and again.json()["code"] == "round_closed"


def test_malicious_fl_api_is_refused(client: TestClient) -> None:
    devices = [f"dev-{i}" for i in range(8)]
    for d in devices:
        _seed(client, d)
    small = _ask(client, devices[:4])
    assert small.status_code == 422 and small.json()["code"] == "set_too_small"  # type: ignore[attr-defined]
    dup = _ask(client, [devices[0]] * 5)
    assert dup.status_code == 422 and dup.json()["code"] == "invalid_request"  # type: ignore[attr-defined]
    padded = _ask(client, [*devices[:4], "never-seen"])
    assert padded.status_code == 422 and padded.json()["code"] == "unknown_devices"  # type: ignore[attr-defined]
    # the refusals wrote nothing: the first valid set is still answered
    assert _ask(client, devices[:7]).status_code == 200  # type: ignore[attr-defined]
    # differencing attack: the same round minus one device is refused
    second = _ask(client, [*devices[1:7], devices[7]])
    assert second.status_code == 409 and second.json()["code"] == "round_closed"  # type: ignore[attr-defined]
    late = client.post("/gateway/v1/seed", headers=_ticket("dev-late"))
    assert late.status_code == 409


def test_credentials_are_checked(client: TestClient) -> None:
    assert client.post("/gateway/v1/seed").status_code == 401
    forged = issue_ticket(b"x" * 32, "dev-1", ROUND, now=10**10 - 100)
    r = client.post("/gateway/v1/seed", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    expired = client.post("/gateway/v1/seed", headers=_ticket("dev-1", now=1000))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    body = {"device_ids": ["a"] * 5, "vector_length": D}
    assert client.post(f"/v1/rounds/{ROUND}/mask-sum", json=body).status_code == 401
    as_device = client.post(f"/v1/rounds/{ROUND}/mask-sum", json=body, headers=_ticket("dev-1"))
    assert as_device.status_code == 401


def test_bad_input_is_a_readable_4xx(client: TestClient) -> None:
    r = client.post(f"/v1/rounds/{ROUND}/mask-sum", json={"device_ids": "x"}, headers=API)
    assert r.status_code == 422
    r = client.post(
        "/v1/rounds/bad round!/mask-sum",
        json={"device_ids": ["a"], "vector_length": 1},
        headers=API,
    )
    assert r.status_code == 422
    r = client.post(
        f"/v1/rounds/{ROUND}/mask-sum",
        json={"device_ids": ["a"] * 5, "vector_length": 10**9},
        headers=API,
    )
    assert r.status_code == 422


def test_central_noise_and_its_floor(tmp_path: Path, settings: MPCSettings) -> None:
    strict = settings.model_copy(update={"min_noise_multiplier": 1.0, "data_dir": tmp_path / "s"})
    with TestClient(create_app(strict)) as c:
        devices = [f"dev-{i}" for i in range(5)]
        seeds = [_seed(c, d) for d in devices]
        weak = _ask(c, devices, noise={"clip_norm": 1.0, "noise_multiplier": 0.5, "scale": 100.0})
        wide = _ask(c, devices, noise={"clip_norm": 1e3, "noise_multiplier": 1e3, "scale": 1e4})
        assert wide.status_code == 422 and "2^31" in wide.text  # type: ignore[attr-defined]
        assert weak.status_code == 422 and weak.json()["code"] == "noise_too_low"  # type: ignore[attr-defined]
        assert _ask(c, devices).status_code == 422  # type: ignore[attr-defined]
        ok = _ask(c, devices, noise={"clip_norm": 1.0, "noise_multiplier": 2.0, "scale": 100.0})
        assert ok.status_code == 200 and ok.json()["noise_added"] is True  # type: ignore[attr-defined]
        total = np.frombuffer(base64.b64decode(ok.json()["negated_mask_sum"]), dtype="<u4")  # type: ignore[attr-defined]
        noise = (total + np.negative(two_server.negated_mask_sum(seeds, D))).view(np.int32)
        assert 180 < float(np.std(noise)) < 220  # z * S * scale = 200
        assert abs(float(np.mean(noise))) < 10  # centred: the sum is unbiased
