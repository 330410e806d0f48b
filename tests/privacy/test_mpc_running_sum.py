"""The MPC service's per-round running sum of masks, over HTTP on SQLite and PostgreSQL.

Masks join the sum when the device passes on the FL-API's receipt for its upload. The answer
must be exactly -(sum of the accepted devices' masks) whichever way it is computed (running sum
plus accepted masks not folded yet, minus any receipted device left out of the set; from the set
when that is cheaper; from the seeds when the round has no sum), across a restart of the service, with seeds handed out concurrently, and the
stored sum must be padded (useless without the master key) and gone once the round is answered.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import undefer

from lerna.core.secagg import _crypto, two_server
from lerna.core.secagg.tickets import issue_receipt, issue_ticket
from lerna.mpc.app import create_app
from lerna.mpc.db import RunningMaskSum, SeedIssue
from lerna.mpc.settings import MPCSettings

TICKET_KEY = "t" * 8 + "ticket-key-for-tests-only-0123456789"
API_TOKEN = "a" * 8 + "api-token-for-tests-only-0123456789"
MASTER = "m" * 8 + "master-key-for-tests-only-0123456789"
API = {"Authorization": f"Bearer {API_TOKEN}"}
D = 1500
ROUND = "app-1:round-7"
BATCH = 3  # masks folded into the running sum 3 at a time: rounds end with some pending


def _folded(count: int) -> int:
    return count // BATCH * BATCH


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> MPCSettings:
    return MPCSettings(
        data_dir=tmp_path,
        database_url=database_url,
        master_key=SecretStr(MASTER),
        ticket_key=SecretStr(TICKET_KEY),
        api_token=SecretStr(API_TOKEN),
        threshold=3,
        fold_batch=BATCH,
    )


@pytest.fixture
def client(settings: MPCSettings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


def _ticket(device: str, length: int | None = D, round_id: str = ROUND) -> dict[str, str]:
    t = issue_ticket(TICKET_KEY.encode(), device, round_id, int(time.time()), vector_length=length)
    return {"Authorization": f"Bearer {t}"}


def _seed(client: TestClient, device: str, length: int | None = D) -> bytes:
    r = client.post("/gateway/v1/seed", headers=_ticket(device, length))
    assert r.status_code == 200, r.text
    return base64.b64decode(r.json()["seed"])


def _receipt(client: TestClient, device: str, round_id: str = ROUND) -> int:
    r = issue_receipt(TICKET_KEY.encode(), device, round_id, int(time.time()))
    return client.post("/gateway/v1/accepted", headers={"Authorization": f"Bearer {r}"}).status_code


def _ask(client: TestClient, devices: list[str], length: int = D) -> np.ndarray:
    body = {"device_ids": devices, "vector_length": length}
    r = client.post(f"/v1/rounds/{ROUND}/mask-sum", json=body, headers=API)
    assert r.status_code == 200, r.text
    return np.frombuffer(base64.b64decode(r.json()["negated_mask_sum"]), dtype="<u4")


def _unmasked(answer: np.ndarray, masked: dict[str, np.ndarray], accepted: list[str]) -> np.ndarray:
    total = answer.astype(np.uint32)
    for d in accepted:
        total += masked[d]
    return total


def _running(client: TestClient) -> RunningMaskSum | None:
    with client.app.state.mask_service.sessions() as session:  # type: ignore[attr-defined]
        row: RunningMaskSum | None = session.get(
            RunningMaskSum, ROUND, options=[undefer(RunningMaskSum.padded_sum)]
        )
        return row


def test_keystream_matches_the_devices_prg() -> None:
    seeds = [bytes([i]) * 32 for i in range(5)]
    for length in (1, 3, 4, 1000):
        expected = np.zeros(length, dtype=np.uint32)
        for s in seeds:
            expected += _crypto.prg_uint32(s, length)
        np.testing.assert_array_equal(two_server.mask_sum(seeds, length), expected)
        total = two_server.add_masks(expected.copy(), seeds, subtract=True)
        assert not total.any()
    master = MASTER.encode()
    pad = two_server.pad_seed(master, ROUND)
    assert pad not in {two_server.device_seed(master, ROUND, d) for d in ("", "0", "pad")}
    assert pad != two_server.pad_seed(master, ROUND + "x")


@pytest.mark.parametrize("dropout", [0.0, 0.1, 0.3, 0.75])
def test_exact_sums_under_dropouts(client: TestClient, dropout: float) -> None:
    rng = np.random.default_rng(int(dropout * 100))
    devices = [f"dev-{i:02d}" for i in range(20)]
    updates = {d: rng.integers(0, 2**32, D, dtype=np.uint32) for d in devices}
    masked = {d: two_server.mask_update(_seed(client, d), updates[d], D) for d in devices}
    assert _seed(client, devices[0]) == _seed(client, devices[0])  # asking twice adds nothing
    dropped = set(rng.choice(20, int(dropout * 20), replace=False).tolist())
    accepted = [d for i, d in enumerate(devices) if i not in dropped]
    receipted = accepted[1:]  # one accepted device never passes its receipt on
    for d in receipted:
        assert _receipt(client, d) == 200
    assert _receipt(client, receipted[0]) == 200  # passed on twice, counted once
    running = _running(client)
    assert running is not None and running.device_count == _folded(len(receipted))
    with client.app.state.mask_service.sessions() as session:  # type: ignore[attr-defined]
        folded = list(session.scalars(select(SeedIssue.device_id).where(SeedIssue.folded)))
    assert len(folded) == _folded(len(receipted)) and set(folded) <= set(receipted)
    # the stored sum is padded: without the master key it is not the sum of the masks
    stored = np.frombuffer(running.padded_sum, dtype="<u4").astype(np.uint32)
    seeds = [two_server.device_seed(MASTER.encode(), ROUND, d) for d in folded]
    pad = two_server.mask_sum([two_server.pad_seed(MASTER.encode(), ROUND)], D)
    np.testing.assert_array_equal(stored - two_server.mask_sum(seeds, D), pad)
    expected = np.zeros(D, dtype=np.uint32)
    for d in accepted:
        expected += updates[d]
    np.testing.assert_array_equal(_unmasked(_ask(client, accepted), masked, accepted), expected)
    assert _running(client) is None, "an answered round keeps no running sum"
    assert _receipt(client, accepted[0]) == 409, "no receipt after the answer"


def test_a_receipted_device_left_out_of_the_set_is_removed(client: TestClient) -> None:
    """An FL-API that receipts a device and then leaves it out still gets the set's exact sum."""
    devices = [f"dev-{i}" for i in range(10)]
    zero = np.zeros(D, dtype=np.uint32)
    masked = {d: two_server.mask_update(_seed(client, d), zero, D) for d in devices}
    for d in devices:
        assert _receipt(client, d) == 200
    accepted = devices[2:]
    assert not _unmasked(_ask(client, accepted), masked, accepted).any()


def test_receipts_are_checked(client: TestClient) -> None:
    _seed(client, "dev-1")
    ticket_as_receipt = client.post("/gateway/v1/accepted", headers=_ticket("dev-1"))
    assert ticket_as_receipt.status_code == 401
    forged = issue_receipt(b"x" * 40, "dev-1", ROUND, int(time.time()))
    r = client.post("/gateway/v1/accepted", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert client.post("/gateway/v1/accepted").status_code == 401
    never_issued = _receipt(client, "dev-2")
    assert never_issued == 422
    receipt = issue_receipt(TICKET_KEY.encode(), "dev-1", ROUND, int(time.time()))
    as_ticket = client.post("/gateway/v1/seed", headers={"Authorization": f"Bearer {receipt}"})
    assert as_ticket.status_code == 401


def test_restart_mid_round_keeps_the_running_sum(settings: MPCSettings) -> None:
    devices = [f"dev-{i}" for i in range(8)]
    zero = np.zeros(D, dtype=np.uint32)
    masked: dict[str, np.ndarray] = {}
    for part in (devices[:5], devices[5:]):  # two service processes, one after the other
        app = create_app(settings)
        with TestClient(app) as c:
            for d in part:
                masked[d] = two_server.mask_update(_seed(c, d), zero, D)
            for d in devices[: len(masked) - 1]:
                assert _receipt(c, d) == 200
            running = _running(c)
            assert running is not None and running.device_count == _folded(len(masked) - 1)
        app.state.engine.dispose()
    app = create_app(settings)
    with TestClient(app) as c:
        accepted = [d for d in devices if d not in ("dev-1", "dev-6")]
        assert not _unmasked(_ask(c, accepted), masked, accepted).any()
    app.state.engine.dispose()


def test_round_without_a_length_is_computed_from_the_seeds(client: TestClient) -> None:
    """Tickets from an FL-API that names no length (or a round opened before the running sums
    existed): no sum is kept, and the answer is recomputed from the set, exactly."""
    devices = [f"dev-{i}" for i in range(6)]
    zero = np.zeros(D, dtype=np.uint32)
    masked = {d: two_server.mask_update(_seed(client, d, length=None), zero, D) for d in devices}
    assert all(_receipt(client, d) == 200 for d in devices)
    assert _running(client) is None
    # a later ticket that does name a length cannot start a sum that would miss earlier masks
    masked["dev-late"] = two_server.mask_update(_seed(client, "dev-late"), zero, D)
    assert _running(client) is None
    accepted = [*devices[:4], "dev-late"]
    assert not _unmasked(_ask(client, accepted), masked, accepted).any()


def test_lengths_are_fixed_by_the_round_and_refusals_write_nothing(client: TestClient) -> None:
    devices = [f"dev-{i}" for i in range(4)]
    zero = np.zeros(D, dtype=np.uint32)
    masked = {d: two_server.mask_update(_seed(client, d), zero, D) for d in devices}
    other = client.post("/gateway/v1/seed", headers=_ticket("dev-x", D + 1))
    assert other.status_code == 422 and "vector_length" in other.json()["detail"]
    legacy = client.post("/gateway/v1/seed", headers=_ticket("dev-y", None))
    assert legacy.status_code == 422
    huge = client.post("/gateway/v1/seed", headers=_ticket("dev-z", 10**9))
    assert huge.status_code == 422
    body = {"device_ids": devices, "vector_length": D - 1}
    wrong = client.post(f"/v1/rounds/{ROUND}/mask-sum", json=body, headers=API)
    assert wrong.status_code == 422 and wrong.json()["code"] == "invalid_request"
    assert all(_receipt(client, d) == 200 for d in devices)
    running = _running(client)
    assert running is not None and running.device_count == _folded(4)
    assert not _unmasked(_ask(client, devices), masked, devices).any()
    # one set per round: a second, overlapping set and any further seed are refused
    second = client.post(
        f"/v1/rounds/{ROUND}/mask-sum",
        json={"device_ids": devices[1:], "vector_length": D},
        headers=API,
    )
    assert second.status_code == 409 and second.json()["code"] == "round_closed"
    assert client.post("/gateway/v1/seed", headers=_ticket("dev-9")).status_code == 409


def test_concurrent_seeds_and_receipts_are_each_counted_once(client: TestClient) -> None:
    devices = [f"dev-{i:02d}" for i in range(16)]
    zero = np.zeros(D, dtype=np.uint32)

    def take_part(d: str) -> tuple[str, np.ndarray]:
        masked = two_server.mask_update(_seed(client, d), zero, D)
        assert _receipt(client, d) == 200
        return d, masked

    with ThreadPoolExecutor(max_workers=6) as pool:
        masked = dict(pool.map(take_part, devices + devices[:6]))
    running = _running(client)
    assert running is not None and running.device_count == _folded(16)
    with client.app.state.mask_service.sessions() as session:  # type: ignore[attr-defined]
        issued = set(session.scalars(select(SeedIssue.device_id)))
        receipted = set(session.scalars(select(SeedIssue.device_id).where(SeedIssue.receipted)))
    assert issued == receipted == set(devices)
    accepted = devices[2:]
    assert not _unmasked(_ask(client, accepted), masked, accepted).any()


def test_seed_derivation_is_hkdf_sha256() -> None:
    master = MASTER.encode()
    info = b"lerna/two-server/v1|seed|" + b"\x00\x02r1" + b"\x00\x05dev-0"
    assert two_server.device_seed(master, "r1", "dev-0") == _crypto.hkdf(master, info)
    with pytest.raises(ValueError, match="at least 32"):
        two_server.device_seed(b"short", "r1", "dev-0")


def test_tickets_carry_the_vector_length_and_older_tickets_still_verify() -> None:
    from lerna.core.secagg.tickets import verify_ticket

    key = TICKET_KEY.encode()
    with_length = issue_ticket(key, "dev-1", ROUND, now=1000, ttl=60, vector_length=D)
    assert verify_ticket(key, with_length, now=1010).vector_length == D
    older = issue_ticket(key, "dev-1", ROUND, now=1000, ttl=60)
    body = base64.urlsafe_b64decode(older.split(".")[1] + "==")
    assert b"vector_length" not in body  # byte-compatible with tickets from before the field
    assert verify_ticket(key, older, now=1010).vector_length is None
    with pytest.raises(ValueError):
        issue_ticket(key, "dev-1", ROUND, now=1000, ttl=60, vector_length=0)
