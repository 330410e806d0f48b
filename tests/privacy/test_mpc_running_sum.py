"""The MPC service's per-round running sums of masks, over HTTP on SQLite and PostgreSQL.

Masks join a round's sum (in the service's memory) when the device passes on the FL-API's
receipt for its upload. The answer must be exactly -(sum of the accepted devices' masks)
whichever way it is computed (the running sum plus accepted masks whose receipt never came,
minus any receipted device left out of the set; from the set's seeds when that is cheaper or no
sum is kept), across a restart of the service, with seeds handed out concurrently; and the
database never holds a sum of masks.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import inspect, select

from lerna.core.secagg import _crypto, two_server
from lerna.core.secagg.tickets import issue_receipt, issue_ticket
from lerna.mpc.app import create_app
from lerna.mpc.db import SeedIssue
from lerna.mpc.running_sums import RunningSums, set_mask_sum
from lerna.mpc.settings import MPCSettings

TICKET_KEY = "t" * 8 + "ticket-key-for-tests-only-0123456789"
API_TOKEN = "a" * 8 + "api-token-for-tests-only-0123456789"
MASTER = "m" * 8 + "master-key-for-tests-only-0123456789"
API = {"Authorization": f"Bearer {API_TOKEN}"}
D = 1500
ROUND = "app-1:round-7"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> MPCSettings:
    return MPCSettings(
        data_dir=tmp_path,
        database_url=database_url,
        master_key=SecretStr(MASTER),
        ticket_key=SecretStr(TICKET_KEY),
        api_token=SecretStr(API_TOKEN),
        threshold=3,
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


def _held(client: TestClient) -> frozenset[str]:
    return client.app.state.mask_service.sums.held_devices(ROUND)  # type: ignore[attr-defined,no-any-return]


def _expanded(caplog: pytest.LogCaptureFixture) -> int:
    """How many masks the last answer had to expand at close (from the service's log line)."""
    lines = [r for r in caplog.records if r.getMessage().startswith("answered round")]
    return int(lines[-1].args[2])  # type: ignore[index]


def test_keystream_matches_the_devices_prg() -> None:
    seeds = [bytes([i]) * 32 for i in range(5)]
    for length in (1, 3, 4, 1000):
        expected = np.zeros(length, dtype=np.uint32)
        for s in seeds:
            expected += _crypto.prg_uint32(s, length)
        np.testing.assert_array_equal(two_server.mask_sum(seeds, length), expected)
        total = two_server.add_masks(expected.copy(), seeds, subtract=True)
        assert not total.any()


@pytest.mark.parametrize("dropout", [0.0, 0.1, 0.3, 0.75])
def test_exact_sums_under_dropouts(
    client: TestClient, dropout: float, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lerna.mpc")
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
    assert _held(client) == set(receipted)
    expected = np.zeros(D, dtype=np.uint32)
    for d in accepted:
        expected += updates[d]
    np.testing.assert_array_equal(_unmasked(_ask(client, accepted), masked, accepted), expected)
    assert _expanded(caplog) == 1, "only the device whose receipt never came is left at close"
    assert _held(client) == frozenset(), "an answered round keeps no running sum"
    assert _receipt(client, accepted[0]) == 409, "no receipt after the answer"


def test_the_database_never_holds_a_sum_of_masks(client: TestClient) -> None:
    devices = [f"dev-{i}" for i in range(5)]
    for d in devices:
        _seed(client, d)
        assert _receipt(client, d) == 200
    engine = client.app.state.engine  # type: ignore[attr-defined]
    tables = set(inspect(engine).get_table_names())
    assert tables == {"seed_issues", "answered_sets", "mpc_alembic_version"}
    columns = {c["name"] for c in inspect(engine).get_columns("seed_issues")}
    assert columns == {"round_id", "device_id", "issued_at"}


def test_a_receipted_device_left_out_of_the_set_is_removed(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An FL-API that receipts a device and then leaves it out still gets the set's exact sum."""
    caplog.set_level(logging.INFO, logger="lerna.mpc")
    devices = [f"dev-{i}" for i in range(10)]
    zero = np.zeros(D, dtype=np.uint32)
    masked = {d: two_server.mask_update(_seed(client, d), zero, D) for d in devices}
    for d in devices:
        assert _receipt(client, d) == 200
    accepted = devices[2:]
    assert not _unmasked(_ask(client, accepted), masked, accepted).any()
    assert _expanded(caplog) == 2


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
    assert _held(client) == frozenset(), "refused receipts add nothing"


def test_a_restart_mid_round_loses_only_speed(
    settings: MPCSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lerna.mpc")
    devices = [f"dev-{i}" for i in range(8)]
    zero = np.zeros(D, dtype=np.uint32)
    masked: dict[str, np.ndarray] = {}
    for part in (devices[:5], devices[5:]):  # two service processes, one after the other
        app = create_app(settings)
        with TestClient(app) as c:
            for d in part:
                masked[d] = two_server.mask_update(_seed(c, d), zero, D)
                assert _receipt(c, d) == 200
        app.state.engine.dispose()
    app = create_app(settings)
    with TestClient(app) as c:
        accepted = [d for d in devices if d not in ("dev-1", "dev-6")]
        assert not _unmasked(_ask(c, accepted), masked, accepted).any()
    app.state.engine.dispose()
    assert _expanded(caplog) == len(accepted), "a new process answers from the seeds"


def test_rounds_without_a_usable_length_are_computed_from_the_seeds(client: TestClient) -> None:
    """Tickets from an FL-API that names no length, or names two: no sum is kept (or it is
    dropped), and the answer is recomputed from the set, exactly."""
    devices = [f"dev-{i}" for i in range(6)]
    zero = np.zeros(D, dtype=np.uint32)
    masked = {d: two_server.mask_update(_seed(client, d, length=None), zero, D) for d in devices}
    assert all(_receipt(client, d) == 200 for d in devices)
    assert _held(client) == frozenset()
    masked["dev-late"] = two_server.mask_update(_seed(client, "dev-late"), zero, D)
    assert _receipt(client, "dev-late") == 200
    assert _held(client) == {"dev-late"}
    masked["dev-other"] = two_server.mask_update(_seed(client, "dev-other", D + 1), zero, D)
    assert _held(client) == frozenset(), "a second length drops the round's sum"
    accepted = [*devices[:4], "dev-late", "dev-other"]
    assert not _unmasked(_ask(client, accepted), masked, accepted).any()


def test_one_set_per_round_and_refusals_write_nothing(client: TestClient) -> None:
    devices = [f"dev-{i}" for i in range(4)]
    zero = np.zeros(D, dtype=np.uint32)
    masked = {d: two_server.mask_update(_seed(client, d), zero, D) for d in devices}
    huge = client.post("/gateway/v1/seed", headers=_ticket("dev-z", 10**9))
    assert huge.status_code == 422
    unknown = {"device_ids": [*devices, "dev-z"], "vector_length": D}
    refused = client.post(f"/v1/rounds/{ROUND}/mask-sum", json=unknown, headers=API)
    assert refused.status_code == 422 and refused.json()["code"] == "unknown_devices"
    assert all(_receipt(client, d) == 200 for d in devices)
    assert _held(client) == set(devices), "a refused request leaves the round open"
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
    assert _held(client) == set(devices)
    with client.app.state.mask_service.sessions() as session:  # type: ignore[attr-defined]
        issued = set(session.scalars(select(SeedIssue.device_id)))
    assert issued == set(devices)
    accepted = devices[2:]
    assert not _unmasked(_ask(client, accepted), masked, accepted).any()


def test_memory_is_bounded_least_recently_used_first() -> None:
    master = MASTER.encode()
    sums = RunningSums(max_length=100, max_bytes=2 * 4 * 100)  # room for two rounds of 100
    for r in ("r1", "r2", "r3"):
        sums.open(r, 100)
    sums.add("r1", "a", two_server.device_seed(master, "r1", "a"))
    sums.add("r2", "a", two_server.device_seed(master, "r2", "a"))
    sums.add("r1", "b", two_server.device_seed(master, "r1", "b"))  # r1 used last
    assert sums.add("r3", "a", two_server.device_seed(master, "r3", "a"))
    assert sums.held_devices("r2") == frozenset(), "the least recently used sum was dropped"
    assert sums.held_devices("r1") == {"a", "b"} and sums.held_devices("r3") == {"a"}
    sums.open("too-long", 101)
    assert not sums.add("too-long", "a", two_server.device_seed(master, "too-long", "a"))
    cached = sums.take("r1")
    assert cached is not None and not sums.add("r1", "c", b"c" * 32), "taken: closed to receipts"
    total, expanded = set_mask_sum(master, "r1", ["a", "b", "c"], 100, cached)
    seeds = [two_server.device_seed(master, "r1", d) for d in "abc"]
    np.testing.assert_array_equal(total, two_server.mask_sum(seeds, 100))
    assert expanded == 1


def test_a_receipt_racing_the_answer_never_changes_it() -> None:
    """Receipts that pass the round check just before the answer take the sum may still add;
    the answer's vector and device set stay as they were taken."""
    master = MASTER.encode()
    sums = RunningSums(max_length=D, max_bytes=4 * D)
    sums.open(ROUND, D)
    devices = [f"dev-{i}" for i in range(40)]
    for d in devices[:20]:
        sums.add(ROUND, d, two_server.device_seed(master, ROUND, d))
    taken: list[object] = []
    adder = threading.Thread(
        target=lambda: [
            sums.add(ROUND, d, two_server.device_seed(master, ROUND, d)) for d in devices[20:]
        ]
    )
    adder.start()
    taken.append(sums.take(ROUND))
    adder.join()
    cached = taken[0]
    assert cached is not None
    total, _ = set_mask_sum(master, ROUND, devices, D, cached)  # type: ignore[arg-type]
    seeds = [two_server.device_seed(master, ROUND, d) for d in devices]
    np.testing.assert_array_equal(total, two_server.mask_sum(seeds, D))


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
