"""Clipping, noise calibration and the accountant, checked against dp-accounting directly."""

from __future__ import annotations

import math

import dp_accounting
import numpy as np
import pytest
from dp_accounting import pld, rdp
from pydantic import ValidationError
from scipy import stats

from lerna.core.dp import (
    PrivacyAccountant,
    PrivacyBudget,
    PrivacyConfig,
    central_noise,
    clip_l2,
    distributed_noise,
    distributed_noise_std,
)


def test_clip_scales_long_vectors_and_keeps_short_ones() -> None:
    long, norm = clip_l2([3.0, 4.0], 1.0)
    assert norm == 5.0
    np.testing.assert_allclose(long, [0.6, 0.8])
    short, _ = clip_l2([0.3, 0.4], 1.0)
    np.testing.assert_array_equal(short, [0.3, 0.4])
    with pytest.raises(ValueError, match="NaN"):
        clip_l2([np.nan], 1.0)
    with pytest.raises(ValueError, match="clip_norm"):
        clip_l2([1.0], 0.0)


def test_distributed_noise_sums_to_central_noise() -> None:
    rng = np.random.default_rng(0)
    n, dim, s, z = 50, 4000, 2.0, 1.1
    total = sum(distributed_noise(dim, s, z, n, rng) for _ in range(n))
    central = central_noise(dim, s, z, rng)
    assert math.isclose(float(np.std(total)), z * s, rel_tol=0.05)
    assert math.isclose(float(np.std(central)), z * s, rel_tol=0.05)
    assert distributed_noise_std(s, z, 4) == pytest.approx(z * s / 2)
    # the dropout caveat: only 30 of 50 shares arrive, so the sum is under-noised
    partial = sum(distributed_noise(dim, s, z, n, rng) for _ in range(30))
    assert float(np.std(partial)) < 0.85 * z * s


def _reference(q: float, z: float, rounds: int, delta: float, method: str) -> float:
    event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z))
    acc: dp_accounting.PrivacyAccountant = (
        rdp.RdpAccountant() if method == "rdp" else pld.PLDAccountant()
    )
    acc.compose(event, rounds)
    return float(acc.get_epsilon(delta))


@pytest.mark.parametrize(
    ("method", "q", "z", "rounds"),
    [
        ("rdp", 0.01, 1.1, 1000),
        ("rdp", 0.1, 1.0, 100),
        ("rdp", 1.0, 5.0, 10),
        ("pld", 0.05, 1.2, 50),
        ("pld", 1.0, 5.0, 10),
    ],
)
def test_accountant_matches_dp_accounting(method: str, q: float, z: float, rounds: int) -> None:
    accountant = PrivacyAccountant(noise_multiplier=z, sampling_rate=q, delta=1e-5, method=method)  # type: ignore[arg-type]
    spent = accountant.spent(rounds)
    assert spent.epsilon == pytest.approx(_reference(q, z, rounds, 1e-5, method), rel=1e-9)
    assert spent.delta == 1e-5 and spent.rounds == rounds


def test_pld_without_sampling_matches_the_exact_gaussian_formula() -> None:
    # r rounds of the full-population Gaussian mechanism = one Gaussian with mu = sqrt(r) / z;
    # Balle & Wang (2018): delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2).
    z, rounds, delta = 4.0, 16, 1e-5
    eps = PrivacyAccountant(z, 1.0, delta, method="pld").epsilon(rounds)
    mu = math.sqrt(rounds) / z
    exact = stats.norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * stats.norm.cdf(-eps / mu - mu / 2)
    assert exact == pytest.approx(delta, rel=0.05)
    assert PrivacyAccountant(z, 1.0, delta).epsilon(rounds) >= eps  # RDP is an upper bound
    assert PrivacyAccountant(1.1, 0.01, 1e-5).epsilon(0) == 0.0


def test_budget_stops_training_when_spent() -> None:
    accountant = PrivacyAccountant(noise_multiplier=1.0, sampling_rate=0.05, delta=1e-5)
    budget = PrivacyBudget(accountant, epsilon_budget=2.0)
    r = budget.max_rounds()
    assert r > 0
    assert accountant.epsilon(r) <= 2.0 < accountant.epsilon(r + 1)
    assert budget.allows(r - 1) and not budget.allows(r)
    assert PrivacyBudget(accountant, epsilon_budget=1e-6).max_rounds() == 0


def test_accountant_refuses_meaningless_parameters() -> None:
    with pytest.raises(ValueError, match="noise_multiplier"):
        PrivacyAccountant(0.0, 0.1, 1e-5)
    with pytest.raises(ValueError, match="sampling_rate"):
        PrivacyAccountant(1.0, 0.0, 1e-5)
    with pytest.raises(ValueError, match="delta"):
        PrivacyAccountant(1.0, 0.1, 1.0)


def test_privacy_config_defaults_and_validation() -> None:
    config = PrivacyConfig()
    assert config.mode == "secagg+" and config.dp_enabled
    assert PrivacyConfig.model_validate_json(config.model_dump_json()) == config
    with pytest.raises(ValidationError, match="noise_multiplier > 0"):
        PrivacyConfig(noise_multiplier=0.0)
    with pytest.raises(ValidationError):
        PrivacyConfig(mode="plain")  # type: ignore[arg-type]
    assert not PrivacyConfig(noise_multiplier=0.0, epsilon_budget=None).dp_enabled
