"""The accountant's noise multiplier on the lattice: z itself when rounding is negligible, less
when the rounding's sqrt(d) is a visible part of the sensitivity, and much less when each
device's discrete Gaussian share is too small for a sum of them to behave like one (KLS tau)."""

from __future__ import annotations

import math

import pytest

from lerna.core.dp import PrivacyAccountant, PrivacyConfig
from lerna.core.dp.lattice import (
    ddg_tau,
    effective_noise_multiplier,
    lattice_sensitivity,
    rigorous_epsilon,
)
from lerna.core.secure_update import accounting_noise_multiplier, quantizer, vector_length


def _privacy(mode: str, clip: float = 6.0, z: float = 1.0, t: int = 471) -> PrivacyConfig:
    return PrivacyConfig(mode=mode, threshold=t, clip_norm=clip, noise_multiplier=z)


@pytest.mark.parametrize("parties", [1, 10, 1000])
def test_effective_z_is_z_when_rounding_is_negligible(parties: int) -> None:
    for z in (0.3, 1.0, 4.0):
        assert effective_noise_multiplier(z, 1.0, 1e12, 10, parties) == pytest.approx(z, rel=1e-9)


def test_effective_z_charges_for_the_rounding() -> None:
    # S * scale = 100 and sqrt(d) = 100: the sensitivity doubles, so z halves (tau = 0 here)
    assert lattice_sensitivity(1.0, 100.0, 10_000) == 200.0
    assert effective_noise_multiplier(2.0, 1.0, 100.0, 10_000, 1) == pytest.approx(1.0)
    assert effective_noise_multiplier(2.0, 1.0, 100.0, 10_000, 4) == pytest.approx(1.0)
    smaller = [effective_noise_multiplier(1.0, 1.0, 1e4, d, 1) for d in (1, 100, 10**4, 10**6)]
    assert smaller == sorted(smaller, reverse=True) and smaller[0] < 1.0


def test_tau_is_kls_sum_negligible_for_real_rounds_and_large_for_tiny_sigma() -> None:
    assert ddg_tau(3.0, 1) == 0.0
    assert ddg_tau(0.6, 2) == pytest.approx(10 * math.exp(-(math.pi**2) * 0.36))  # k = 1 only
    three = 10 * (math.exp(-(math.pi**2) * 0.36) + math.exp(-2 * math.pi**2 * 0.36 * 2 / 3))
    assert ddg_tau(0.6, 3) == pytest.approx(three)
    assert ddg_tau(0.5, 100) > 5.0  # tiny shares: a sum of them is far from a discrete Gaussian
    assert ddg_tau(3.0, 10_000) < 1e-30
    assert ddg_tau(1e4, 10**6) == 0.0
    # tiny per-device sigma: tau sqrt(d) dominates and the effective multiplier collapses
    z = effective_noise_multiplier(1.0, 1.0, 2.0, 100, 16)  # sigma = 0.5 per device
    assert z < 0.2 * (2.0 / 12.0)  # without tau: total std 2 over sensitivity 2 + sqrt(100)


def test_realistic_rounds_lose_almost_nothing() -> None:
    """The MovieLens DP settings of docs/privacy.md (S = 6, t = 471, 943 devices, fcf dim 16)
    in both modes: tau underflows and the rounding costs < 0.1% of z."""
    num_params = 1682 * 16 + 943  # an fcf-sized model; the figure barely depends on it
    for mode in ("secagg+", "two-server"):
        privacy = _privacy(mode)
        z_eff = accounting_noise_multiplier(privacy, num_params, 943)
        assert 0.999 < z_eff < 1.0
    q = quantizer(_privacy("secagg+"), 943)
    sigma = 6.0 * q.scale / math.sqrt(471)
    assert sigma > 1e4 and ddg_tau(sigma, 471) == 0.0


def test_the_call_site_form_matches_the_core_formula_and_costs_epsilon() -> None:
    privacy = _privacy("secagg+", clip=0.1, z=1.0, t=10)
    num_params, cohort = 2_000_000, 20_000
    q = quantizer(privacy, cohort)
    expected = effective_noise_multiplier(1.0, 0.1, q.scale, vector_length(num_params), 10)
    z_eff = accounting_noise_multiplier(privacy, num_params, cohort)
    assert z_eff == expected and z_eff < 0.97  # a small S and a big model: visible rounding cost
    # a smaller cohort means a finer fixed point and a multiplier closer to z
    assert accounting_noise_multiplier(privacy, num_params, 100) > z_eff
    central = _privacy("two-server", clip=0.1, z=1.0, t=10)
    qc = quantizer(central, cohort)
    assert accounting_noise_multiplier(central, num_params, cohort) == (
        effective_noise_multiplier(1.0, 0.1, qc.scale, vector_length(num_params), 1)
    )
    eps = PrivacyAccountant(1.0, 0.1, 1e-5).epsilon(10)
    assert PrivacyAccountant(z_eff, 0.1, 1e-5).epsilon(10) > eps


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="sigma >= 1/2"):
        effective_noise_multiplier(1.0, 1.0, 1.0, 10, 16)  # sigma = 0.25 per device
    with pytest.raises(ValueError, match="parties"):
        effective_noise_multiplier(1.0, 1.0, 1e6, 10, 0)
    with pytest.raises(ValueError, match="dim"):
        lattice_sensitivity(1.0, 1e6, 0)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            effective_noise_multiplier(bad, 1.0, 1e6, 10, 2)
        with pytest.raises(ValueError):
            ddg_tau(bad, 3)
    plain = PrivacyConfig(mode="secagg+", noise_multiplier=0, epsilon_budget=None)
    with pytest.raises(ValueError, match="no DP noise"):
        accounting_noise_multiplier(plain, 100, 10)


def test_rigorous_subsampled_epsilon_brackets_the_accountants_approximation() -> None:
    """At q = 1 both are the Gaussian's RDP curve (the bound uses integer orders only, hence a
    few percent above the accountant's finer grid); under Poisson
    sampling the general bound is larger than the sampled-Gaussian figure, and both are far
    below the unsampled one."""
    exact = PrivacyAccountant(1.0, 1.0, 1e-5).epsilon(10)
    assert exact <= rigorous_epsilon(1.0, 1.0, 10, 1e-5) <= 1.05 * exact
    for q, z, rounds in ((0.01, 1.0, 1000), (0.1, 0.8, 50), (0.5, 1.0, 10)):
        approx = PrivacyAccountant(z, q, 1e-5).epsilon(rounds)
        rigorous = rigorous_epsilon(z, q, rounds, 1e-5)
        assert approx < rigorous < 1.35 * approx  # measured: 1.17 .. 1.29
        assert rigorous < rigorous_epsilon(z, 1.0, rounds, 1e-5)
    assert rigorous_epsilon(1.0, 0.1, 0, 1e-5) == 0.0
    with pytest.raises(ValueError):
        rigorous_epsilon(1.0, 0.0, 10, 1e-5)


def test_under_dp_a_small_clip_norm_does_not_coarsen_the_fixed_point() -> None:
    """Under DP every slot is within S, so the range is S (not max(S, 1)): S = 0.1 gets a ~10x
    finer scale than it would with the extras' unscaled [0, 1] range, and the multiplier the
    accountant is given stays within 0.5% of z in two-server mode at a million parameters."""
    dp = _privacy("two-server", clip=0.1, z=1.0, t=10)
    plain = PrivacyConfig(mode="two-server", clip_norm=0.1, noise_multiplier=0, epsilon_budget=None)
    assert quantizer(dp, 10_000).scale > 9 * quantizer(plain, 10_000).scale
    assert accounting_noise_multiplier(dp, 1_000_000, 10_000) > 0.995
