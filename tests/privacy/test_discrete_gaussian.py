"""The discrete Gaussian sampler draws N_Z(0, sigma^2): integers whose frequencies match the pmf,
whose variance is the distribution's true one (not sigma^2 for small sigma), symmetric, for any
sigma from tiny to 1e12, and it refuses what it cannot honour."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lerna.core.dp.discrete import (
    MAX_SIGMA,
    discrete_gaussian,
    discrete_gaussian_pmf,
    discrete_gaussian_variance,
    noise_rng,
)

N = 200_000


def _chi_square(samples: np.ndarray, sigma: float) -> tuple[float, int]:
    """Pearson's statistic over the integers |x| <= k (k: expected count >= 20) plus two tails."""
    support = np.arange(-int(8 * sigma) - 2, int(8 * sigma) + 3)
    expected = discrete_gaussian_pmf(sigma, support) * samples.size
    kept = support[expected >= 20]
    lo, hi = int(kept.min()), int(kept.max())
    observed = [np.count_nonzero(samples < lo)]
    observed += list(
        np.bincount(samples[(samples >= lo) & (samples <= hi)] - lo, minlength=hi - lo + 1)
    )
    observed.append(np.count_nonzero(samples > hi))
    inner = discrete_gaussian_pmf(sigma, np.arange(lo, hi + 1))
    tail = (1.0 - inner.sum()) / 2
    probs = np.concatenate([[tail], inner, [tail]])
    exp = probs * samples.size
    mask = exp > 0
    obs = np.asarray(observed, dtype=np.float64)[mask]
    return float(np.sum((obs - exp[mask]) ** 2 / exp[mask])), int(mask.sum()) - 1


def test_outputs_are_exact_int64_integers_and_reproducible() -> None:
    a = discrete_gaussian(3.7, 1000, np.random.default_rng(5))
    b = discrete_gaussian(3.7, 1000, np.random.default_rng(5))
    assert a.dtype == np.int64 and a.shape == (1000,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, discrete_gaussian(3.7, 1000, np.random.default_rng(6)))
    assert np.issubdtype(discrete_gaussian(2.3e6, 10, noise_rng()).dtype, np.int64)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 3.0, 1e3, 2.3e6, 1e9])
def test_mean_is_zero_and_variance_is_the_distributions_own(sigma: float) -> None:
    x = discrete_gaussian(sigma, N, np.random.default_rng(int(sigma * 10) % 2**32))
    var = discrete_gaussian_variance(sigma)
    assert abs(float(x.mean())) < 5 * math.sqrt(var / N)
    # the sample variance of a near-Gaussian has relative sd sqrt(2 / N) ~ 0.3%: 5 sd
    assert float(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(var, rel=5 * math.sqrt(2 / N))


def test_small_sigma_variance_is_below_sigma_squared_and_large_sigma_is_sigma_squared() -> None:
    assert discrete_gaussian_variance(0.5) == pytest.approx(0.21501, abs=1e-5)
    assert discrete_gaussian_variance(0.3) < 0.1 * 0.3**2
    for sigma in (2.0, 3.0, 10.0, 1e6):
        assert discrete_gaussian_variance(sigma) == pytest.approx(sigma**2, rel=1e-12)
    # the sampler really has the smaller variance, not sigma^2 (0.25): a rounded normal has ~0.33
    x = discrete_gaussian(0.5, N, np.random.default_rng(11))
    assert float(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(0.21501, rel=0.02)


@pytest.mark.parametrize("sigma", [1.0, 2.5])
def test_frequencies_match_the_pmf(sigma: float) -> None:
    x = discrete_gaussian(sigma, N, np.random.default_rng(int(sigma * 100)))
    stat, dof = _chi_square(x, sigma)
    assert stat < stats.chi2.ppf(0.9999, dof)
    support = np.arange(-30, 31)
    freq = np.bincount(x[np.abs(x) <= 30] + 30, minlength=61) / N
    tv = 0.5 * float(np.abs(freq - discrete_gaussian_pmf(sigma, support)).sum())
    assert tv < 0.01


def test_the_pmf_check_would_catch_a_rounded_continuous_gaussian() -> None:
    """The chi-square above has power: a rounded float Gaussian of the same sigma fails it."""
    rounded = np.rint(np.random.default_rng(3).normal(0.0, 1.0, N)).astype(np.int64)
    stat, dof = _chi_square(rounded, 1.0)
    assert stat > 10 * stats.chi2.ppf(0.9999, dof)


def test_distribution_is_symmetric() -> None:
    x = discrete_gaussian(4.2, N, np.random.default_rng(9))
    pos, neg = int(np.count_nonzero(x > 0)), int(np.count_nonzero(x < 0))
    assert abs(pos - neg) < 5 * math.sqrt(pos + neg)  # pos - neg has sd sqrt(pos + neg)
    counts = np.bincount(np.abs(x[x != 0]), minlength=30)[:15]
    plus = np.bincount(x[x > 0], minlength=15)[:15]
    # each |x| = k splits evenly between +k and -k
    for k in range(1, 12):
        assert abs(2 * int(plus[k]) - int(counts[k])) < 5 * math.sqrt(counts[k]) + 1


def test_tiny_sigma_gives_zeros_and_huge_sigma_works() -> None:
    for sigma in (1e-300, 1e-6, 0.019):
        np.testing.assert_array_equal(discrete_gaussian(sigma, 50, np.random.default_rng(0)), 0)
    x = discrete_gaussian(0.25, N, np.random.default_rng(0))  # P(|x| = 1) = 2 e^-8 / Z ~ 6.7e-4
    assert set(np.unique(x)) <= {-1, 0, 1} and 50 < np.count_nonzero(x) < 250
    big = discrete_gaussian(MAX_SIGMA, 10_000, np.random.default_rng(1))
    assert big.dtype == np.int64
    assert float(np.std(big.astype(np.float64))) == pytest.approx(MAX_SIGMA, rel=0.05)


def test_size_zero_and_one() -> None:
    empty = discrete_gaussian(5.0, 0, np.random.default_rng(0))
    assert empty.shape == (0,) and empty.dtype == np.int64
    assert discrete_gaussian(5.0, 1, np.random.default_rng(0)).shape == (1,)


@pytest.mark.parametrize(
    ("sigma", "size", "error"),
    [
        (0.0, 3, ValueError),
        (-1.0, 3, ValueError),
        (math.nan, 3, ValueError),
        (math.inf, 3, ValueError),
        (MAX_SIGMA * 2, 3, ValueError),
        (1.0, -1, ValueError),
        (True, 3, TypeError),
        ("1.0", 3, TypeError),
        (1.0, 2.0, TypeError),
        (1.0, True, TypeError),
    ],
)
def test_bad_inputs_are_refused(sigma: object, size: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        discrete_gaussian(sigma, size, np.random.default_rng(0))  # type: ignore[arg-type]


def test_production_generators_are_independently_seeded() -> None:
    a, b = noise_rng(), noise_rng()
    assert not np.array_equal(discrete_gaussian(1e6, 8, a), discrete_gaussian(1e6, 8, b))
