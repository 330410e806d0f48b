"""Shamir sharing, fixed-point quantisation, the PRG and device tickets, on known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from lerna.core.secagg import ProtocolError, Quantizer, shamir, tickets, two_server
from lerna.core.secagg._crypto import prg_uint32
from lerna.core.secagg.graph import default_degree, neighbours, neighbours_of

SECRET = bytes(range(32))


def test_any_threshold_subset_recovers_the_secret() -> None:
    shares = shamir.split(SECRET, [1, 2, 3, 4, 5], threshold=3)
    for subset in itertools.combinations(shares.items(), 3):
        assert shamir.combine(subset, 3) == SECRET
    with pytest.raises(ProtocolError, match="not enough"):
        shamir.combine(list(shares.items())[:2], 3)


def test_shares_below_threshold_are_fresh_each_time() -> None:
    a = shamir.split(SECRET, [1, 2, 3], threshold=3)
    b = shamir.split(SECRET, [1, 2, 3], threshold=3)
    assert a[1] != b[1] and a[2] != b[2]


def test_malformed_shares_are_refused() -> None:
    shares = shamir.split(SECRET, [1, 2], threshold=2)
    with pytest.raises(ProtocolError, match="wrong length"):
        shamir.combine([(1, shares[1][:-1]), (2, shares[2])], 2)
    with pytest.raises(ProtocolError, match="out of range"):
        shamir.combine([(1, shamir.PRIME.to_bytes(66, "big")), (2, shares[2])], 2)
    with pytest.raises(ProtocolError, match="index"):
        shamir.combine([(0, shares[1]), (2, shares[2])], 2)


def test_prg_is_deterministic_and_known() -> None:
    a = prg_uint32(bytes(32), 4)
    # AES-256-CTR keystream of the all-zero key and IV (FIPS-197 / SP 800-38A style vector)
    assert a.astype("<u4").tobytes().hex() == "dc95c078a2408989ad48a21492842087"
    np.testing.assert_array_equal(prg_uint32(bytes(32), 100_000)[:4], a)
    with pytest.raises(ValueError):
        prg_uint32(b"short", 4)


def test_quantised_sum_decodes_within_resolution() -> None:
    rng = np.random.default_rng(0)
    q = Quantizer.for_devices(bound=1.0, n_max=50)
    xs = rng.uniform(-1, 1, size=(50, 200))
    total = np.zeros(200, dtype=np.uint32)
    for x in xs:
        total += q.quantize(x, rng)
    decoded = q.dequantize_sum(total, 50)
    np.testing.assert_allclose(decoded, xs.sum(axis=0), atol=50 / q.scale)


def test_extreme_values_from_n_max_devices_do_not_overflow() -> None:
    rng = np.random.default_rng(1)
    q = Quantizer.for_devices(bound=2.0, n_max=1000)
    for sign in (1.0, -1.0):
        one = q.quantize(np.full(8, sign * 5.0), rng)  # clipped to +-2
        total = (one.astype(np.uint64) * 1000 % 2**32).astype(np.uint32)
        np.testing.assert_allclose(q.dequantize_sum(total, 1000), sign * 2000.0, rtol=1e-6)
    with pytest.raises(ProtocolError, match="n_max"):
        q.dequantize_sum(total, 1001)


def test_stochastic_rounding_is_unbiased() -> None:
    q = Quantizer(bound=1.0, n_max=1, scale=1.0)
    codes = q.quantize(np.full(100_000, 0.25), np.random.default_rng(2))
    assert set(np.unique(codes).tolist()) == {0, 1}
    assert abs(codes.mean() - 0.25) < 0.01


def test_quantiser_refuses_bad_input() -> None:
    q = Quantizer.for_devices(1.0, 10)
    with pytest.raises(ValueError, match="NaN"):
        q.quantize(np.array([0.0, np.nan]), np.random.default_rng(0))
    with pytest.raises(ValueError, match="1-D"):
        q.quantize(np.zeros((2, 2)), np.random.default_rng(0))
    with pytest.raises(ValueError):
        Quantizer.for_devices(0.0, 10)


def test_graph_is_regular_symmetric_and_agreed() -> None:
    parties = list(range(1, 101))
    graph = neighbours(parties, 10, b"seed")
    assert all(len(v) == 10 and p not in v for p, v in graph.items())
    assert all(p in graph[q] for p, v in graph.items() for q in v)
    assert all(neighbours_of(p, parties, 10, b"seed") == graph[p] for p in parties)
    assert neighbours(parties, 10, b"other") != graph
    assert default_degree(500, 0.1) < default_degree(500, 0.3) < 499
    assert default_degree(100, 0.1) < default_degree(100_000, 0.1) < 2 * default_degree(100, 0.1)


def test_two_server_masks_cancel_for_the_accepted_set() -> None:
    master = bytes(range(32, 64))
    rng = np.random.default_rng(3)
    devices = [f"dev-{i}" for i in range(6)]
    updates = {d: rng.integers(0, 2**32, 1000, dtype=np.uint32) for d in devices}
    seeds = {d: two_server.device_seed(master, "r1", d) for d in devices}
    masked = {d: two_server.mask_update(seeds[d], updates[d], 1000) for d in devices}
    accepted = devices[:4]
    total = two_server.negated_mask_sum((seeds[d] for d in accepted), 1000)
    expected = np.zeros(1000, dtype=np.uint32)
    for d in accepted:
        total += masked[d]
        expected += updates[d]
    np.testing.assert_array_equal(total, expected)
    assert two_server.device_seed(master, "r2", "dev-0") != seeds["dev-0"]
    # what the FL-API stores per device is uniform-looking even for an all-zero update
    zero_masked = two_server.mask_update(seeds["dev-0"], np.zeros(1000, dtype=np.uint32), 1000)
    counts = np.bincount(zero_masked >> np.uint32(28), minlength=16)
    assert stats.chisquare(counts).pvalue > 1e-3
    assert two_server.device_seed(master, "r1d", "ev-0") != seeds["dev-0"]


def test_tickets_verify_and_refuse_tampering_and_expiry() -> None:
    key = b"k" * 32
    ticket = tickets.issue_ticket(key, "dev-1", "app-1:round-3", now=1000, ttl=60)
    claims = tickets.verify_ticket(key, ticket, now=1030)
    assert (claims.device_id, claims.round_id) == ("dev-1", "app-1:round-3")
    with pytest.raises(ProtocolError, match="expired"):
        tickets.verify_ticket(key, ticket, now=1061)
    with pytest.raises(ProtocolError, match="invalid"):
        tickets.verify_ticket(b"j" * 32, ticket, now=1030)
    head, _body, mac = ticket.split(".")
    forged_body = tickets._b64(
        b'{"device_id":"dev-2","round_id":"app-1:round-3","expires_at":1060}'
    )
    with pytest.raises(ProtocolError, match="invalid"):
        tickets.verify_ticket(key, f"{head}.{forged_body}.{mac}", now=1030)
    with pytest.raises(ProtocolError, match="invalid"):
        tickets.verify_ticket(key, "garbage", now=1030)
