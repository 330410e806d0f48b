"""What one device puts into a DP round's sum: its whole packed contribution (update, weight,
metrics, count) has L2 norm at most the clip norm the accountant assumes, and the server reads
the sum back as DP-FedAvg (per-user mean over the expected cohort)."""

from __future__ import annotations

import numpy as np
import pytest

from lerna.core.dp import PrivacyConfig
from lerna.core.metrics import METRIC_NAMES
from lerna.core.secure_update import (
    EXTRA,
    contribution,
    extra_scale,
    lattice_noise_std,
    noise_std,
    quantizer,
    to_lattice,
    unpack,
    update_clip,
)
from lerna.sdk.trainer import training_hyper


def _privacy(mode: str = "secagg+", clip: float = 1.0, z: float = 1.0) -> PrivacyConfig:
    return PrivacyConfig.model_validate(
        {"mode": mode, "threshold": 4, "clip_norm": clip, "noise_multiplier": z}
        | ({} if z > 0 else {"epsilon_budget": None})
    )


@pytest.mark.parametrize("clip", [0.3, 1.0, 6.0])
@pytest.mark.parametrize("mode", ["secagg+", "two-server"])
def test_one_devices_packed_contribution_has_norm_at_most_the_clip(clip: float, mode: str) -> None:
    privacy = _privacy(mode, clip)
    rng = np.random.default_rng(0)
    worst = {name: 5.0 for name in METRIC_NAMES}  # out of range: clipped into [0, 1]
    for scale in (1e-3, 0.1, 1.0, 100.0):
        for examples in (1, 37, 5000):
            delta = rng.normal(scale=scale, size=200)
            vec = contribution(delta, examples, worst, privacy)
            assert vec.shape == (200 + EXTRA,)
            assert float(np.linalg.norm(vec)) <= clip * (1 + 1e-12)
    # a large update with the largest extras reaches the bound: no slack wasted
    vec = contribution(np.full(200, 100.0), 5000, {n: 1.0 for n in METRIC_NAMES}, privacy)
    assert float(np.linalg.norm(vec)) == pytest.approx(clip)


def test_noise_is_split_across_devices_in_secagg_and_absent_in_two_server() -> None:
    """SecAgg+ devices add N_Z(0, (z S / sqrt(t) * scale)^2) on the lattice after quantising;
    two-server devices add nothing (the MPC service does)."""
    delta = np.linspace(-1, 1, 4000)
    secagg, central = _privacy("secagg+", 2.0, 1.5), _privacy("two-server", 2.0, 1.5)
    assert noise_std(secagg) == pytest.approx(1.5 * 2.0 / 2)  # z S / sqrt(t), t = 4
    vec = contribution(delta, 10, {}, secagg)
    q = quantizer(secagg, 8)
    clean = q.quantize(vec, np.random.default_rng(1)).view(np.int32).astype(np.int64)
    noised = to_lattice(vec, secagg, 8, np.random.default_rng(1))
    assert noised.dtype == np.uint32
    noise = noised.view(np.int32).astype(np.int64) - clean  # same rng: same rounding, then noise
    assert lattice_noise_std(secagg, q) == pytest.approx(1.5 * q.scale)
    assert float(np.std(noise)) == pytest.approx(1.5 * q.scale, rel=0.05)
    assert abs(float(np.mean(noise))) < 5 * 1.5 * q.scale / np.sqrt(noise.size)
    vec2 = contribution(delta, 10, {}, central)
    q2 = quantizer(central, 8)
    np.testing.assert_array_equal(
        to_lattice(vec2, central, 8, np.random.default_rng(1)),
        q2.quantize(vec2, np.random.default_rng(1)),
    )


def test_lattice_noise_sums_to_z_s_over_t_devices_and_decodes_without_wrapping() -> None:
    """t devices at the extreme of the range (every one's only coordinate at +S, noise on
    top) still decode to their true sum plus noise of standard deviation z S: the headroom
    keeps the noised sum inside int32."""
    privacy = _privacy("secagg+", 2.0, 1.5)  # t = 4
    parties, dim = 4, 20_000
    q = quantizer(privacy, parties)
    total = np.zeros(dim, dtype=np.uint32)
    rng = np.random.default_rng(7)
    worst = np.zeros(dim)
    worst[::2] = 2.0  # at the clip norm per coordinate (not a real contribution: a range test)
    worst[1::2] = -2.0
    for _ in range(parties):
        total += to_lattice(worst, privacy, parties, rng)
    decoded = q.dequantize_sum(total, parties)
    error = decoded - parties * worst
    assert float(np.max(np.abs(error))) < 6 * 1.5 * 2.0  # no wrap (a wrap is off by ~2^32 / scale)
    assert float(np.std(error)) == pytest.approx(1.5 * 2.0, rel=0.03)  # z S: t shares of z S / 2


def test_dp_sum_decodes_to_the_per_user_mean_over_the_expected_cohort() -> None:
    privacy = _privacy("two-server", 1.0)
    rng = np.random.default_rng(2)
    deltas = [rng.normal(scale=s, size=30) for s in (0.01, 0.1, 5.0)]
    examples = [3, 400, 2000]
    metrics = [{"ndcg@10": 0.5}, {"ndcg@10": 0.25}, {}]
    total = np.sum(
        [contribution(d, n, m, privacy) for d, n, m in zip(deltas, examples, metrics, strict=True)],
        axis=0,
    )
    result = unpack(total, 30, privacy, expected_cohort=5)
    clipped = [d * min(1.0, update_clip(privacy) / float(np.linalg.norm(d))) for d in deltas]
    np.testing.assert_allclose(result.mean_delta, np.sum(clipped, axis=0) / 5)
    assert result.num_examples == 3 + 400 + 1000  # each device's weight is capped at 1000
    assert result.metric_reports == 2
    assert result.metrics["ndcg@10"] == pytest.approx(0.75)
    np.testing.assert_array_equal(result.total, total)
    with pytest.raises(ValueError, match="expected cohort"):
        unpack(total, 30, privacy)
    assert extra_scale(_privacy(z=0.0)) == 1.0 and update_clip(_privacy(z=0.0)) == 1.0


def test_without_dp_the_sum_stays_example_weighted_fedavg() -> None:
    privacy = PrivacyConfig(mode="secagg+", threshold=2, noise_multiplier=0, epsilon_budget=None)
    a, b = np.full(10, 0.1), np.full(10, -0.2)
    total = contribution(a, 100, {}, privacy) + contribution(b, 300, {}, privacy)
    result = unpack(total, 10, privacy, expected_cohort=7)  # ignored without DP
    np.testing.assert_allclose(result.mean_delta, (0.1 * 100 - 0.2 * 300) / 400)
    assert result.num_examples == 400


def test_devices_train_the_per_user_form_only_under_dp() -> None:
    noisy, plain = (
        _privacy(),
        PrivacyConfig(mode="secagg+", noise_multiplier=0, epsilon_budget=None),
    )
    clear = PrivacyConfig(mode="none", noise_multiplier=1.0, epsilon_budget=None)
    assert training_hyper("fcf", {"dim": 8}, noisy) == {"dim": 8, "per_user": True}
    assert training_hyper("fcf", {"dim": 8, "per_user": False}, noisy)["per_user"] is True
    assert training_hyper("fcf", {"dim": 8}, plain) == {"dim": 8}
    assert training_hyper("fcf", {"dim": 8}, clear) == {"dim": 8}  # plain uploads: no DP here
    assert training_hyper("logistic", {"epochs": 2}, noisy) == {"epochs": 2}
