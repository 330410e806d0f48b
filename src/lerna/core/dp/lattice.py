"""Accounting for discrete Gaussian noise on the quantised lattice: the effective noise multiplier.

The accountant (``PrivacyAccountant``) speaks of a continuous Gaussian with noise multiplier z on
a sum of vectors of L2 norm at most S. What the servers release is different in two ways, and
both cost a little privacy, so the multiplier the accountant is given must be an *effective* one:

1. **Sensitivity grows on the lattice.** A device quantises its clipped contribution x
   (||x|| <= S) as the stochastic rounding of x * scale; every coordinate moves by less than 1,
   so ||round(x * scale)|| <= S * scale + sqrt(d) (d values in the vector). Noise of standard
   deviation z * S * scale therefore protects a sensitivity of Delta = S * scale + sqrt(d), not
   S * scale. (Kairouz, Liu, Steinke 2021, "The Distributed Discrete Gaussian Mechanism for
   Federated Learning with Secure Aggregation", ICML; KLS below, Theorem 1 / Lemma 21 with
   beta = 0, i.e. no conditional rounding.)
2. **A sum of discrete Gaussians is not a discrete Gaussian.** With n parties each adding
   N_Z(0, sigma^2), KLS Proposition 14 (their Eq. 17, second term) bounds the Renyi divergence
   of the sum at every order alpha by (alpha / 2) eps^2 with
   ``eps = Delta / (sqrt(n) sigma) + tau sqrt(d)``,
   ``tau = 10 sum_{k=1}^{n-1} exp(-2 pi^2 sigma^2 k / (k + 1))``, valid for sigma >= 1/2.
   With one party (two-server mode: the MPC service's single central draw) tau = 0 and the
   bound is CKS Theorem 4 exactly.

A continuous Gaussian with multiplier z' has Renyi divergence alpha / (2 z'^2) at every order, so
z_eff = 1 / eps gives *exactly* the RDP curve KLS prove for the lattice mechanism (a valid upper
bound, the zCDP form, rho = eps^2 / 2). KLS's first term (alpha Delta^2 / (2 n sigma^2) + tau d)
can be smaller at small alpha; using only the second is conservative.

What follows from that, and what does not:

* q = 1 (every device every round), RDP accountant: rigorous. The composed RDP curve is the
  Gaussian's at z_eff, and the RDP-to-(epsilon, delta) conversion is the same.
* q < 1 (Poisson-sampled cohorts), RDP accountant: **an approximation.** The sampled-Gaussian
  RDP (Mironov, Talwar, Zhang 2019) is proved for the continuous Gaussian; a mechanism that only
  shares its RDP curve need not share its amplification by subsampling. The rigorous route is
  the general Poisson-subsampled RDP upper bound of Zhu and Wang 2019 ("Poisson Subsampled
  Renyi Differential Privacy", ICML), which KLS's own accounting code applies to their curve
  and which is looser: ``rigorous_epsilon`` computes it, and it comes out 17-29% above
  ``PrivacyAccountant``'s figure at the same z_eff (q = 0.01 .. 0.5, delta = 1e-5; 4% above at
  q = 1, where only its coarser grid of integer orders differs). For the sigmas of real rounds
  (1e4 and up in quantised units) the lattice mechanism is numerically indistinguishable from
  the continuous one (tau underflows to 0, Delta / (S * scale) - 1 is ~1e-4), which is why the
  approximation is the standard practical choice, but it is not a proof.
* PLD accountant at z_eff: an approximation at any q (an RDP curve does not fix the privacy
  profile the PLD accountant assumes).

The noise is calibrated for ``parties`` = the least number of devices whose sum may be revealed
(the round's threshold t); more survivors add independent noise to that sum, which is
post-processing and can only help.
"""

from __future__ import annotations

import math

import numpy as np
from dp_accounting.rdp.rdp_privacy_accountant import compute_epsilon
from scipy import special

RDP_ORDERS = (*range(2, 65), 80, 96, 128, 192, 256)


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite, got {value}")


def ddg_tau(sigma: float, parties: int) -> float:
    """KLS's tau for ``parties`` devices each adding N_Z(0, sigma^2) (0 for one party).

    Terms shrink with k, so tau <= 10 (n - 1) exp(-pi^2 sigma^2): already below 1e-40 at
    sigma = 3, and 0 in float64 for the sigmas of real rounds."""
    _positive("sigma", sigma)
    if parties < 1:
        raise ValueError(f"parties must be >= 1, got {parties}")
    if parties == 1:
        return 0.0
    k = np.arange(1, parties, dtype=np.float64)
    return float(10.0 * np.sum(np.exp(-2.0 * math.pi**2 * sigma**2 * k / (k + 1.0))))


def lattice_sensitivity(clip_norm: float, scale: float, dim: int) -> float:
    """L2 bound on one device's quantised vector: S * scale + sqrt(d) (rounding moves each
    coordinate by less than one unit)."""
    _positive("clip_norm", clip_norm)
    _positive("scale", scale)
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    return clip_norm * scale + math.sqrt(dim)


def effective_noise_multiplier(
    noise_multiplier: float, clip_norm: float, scale: float, dim: int, parties: int
) -> float:
    """The multiplier to give the accountant for noise of total standard deviation
    ``noise_multiplier * clip_norm * scale`` quantised units, split as N_Z(0, sigma^2) over
    ``parties`` devices (sigma = z S scale / sqrt(parties); parties = 1 for central noise).

    Equals z as d / scale -> 0 and is smaller otherwise (see the module docstring for which
    accountant uses of it are exact and which are approximations)."""
    _positive("noise_multiplier", noise_multiplier)
    if parties < 1:
        raise ValueError(f"parties must be >= 1, got {parties}")
    delta = lattice_sensitivity(clip_norm, scale, dim)
    total_std = noise_multiplier * clip_norm * scale
    sigma = total_std / math.sqrt(parties)
    tau = ddg_tau(sigma, parties)
    if parties > 1 and sigma < 0.5:
        raise ValueError(
            f"each device's noise ({sigma:.3g} quantised units) is below KLS's sigma >= 1/2"
        )
    return 1.0 / (delta / total_std + tau * math.sqrt(dim))


def _subsampled_rdp(alpha: int, q: float, z: float) -> float:
    """Zhu and Wang 2019's general upper bound on the RDP of order ``alpha`` of a Poisson
    q-subsampled mechanism whose own RDP is alpha / (2 z^2), capped by that unsampled curve."""
    own = alpha / (2 * z * z)
    if q == 1.0:
        return own
    logs = [0.0, 2 / (2 * z * z)]
    weights = [
        (1 - q) ** (alpha - 1) * (alpha * q - q + 1),
        special.comb(alpha, 2) * q * q * (1 - q) ** (alpha - 2),
    ]
    for m in range(3, alpha + 1):
        log_comb = (
            special.gammaln(alpha + 1) - special.gammaln(m + 1) - special.gammaln(alpha - m + 1)
        )
        logs.append(
            (m - 1) * m / (2 * z * z) + log_comb + (alpha - m) * math.log1p(-q) + m * math.log(q)
        )
        weights.append(3.0)
    return min(float(special.logsumexp(a=logs, b=weights)) / (alpha - 1), own)


def rigorous_epsilon(
    noise_multiplier: float, sampling_rate: float, rounds: int, delta: float
) -> float:
    """Epsilon after ``rounds`` Poisson-sampled rounds of a mechanism whose RDP curve is the
    Gaussian's at ``noise_multiplier`` (e.g. the lattice mechanism at its effective multiplier),
    without assuming it amplifies under sampling like the continuous Gaussian does: the general
    bound of Zhu and Wang 2019. An upper bound to set beside ``PrivacyAccountant``'s figure."""
    _positive("noise_multiplier", noise_multiplier)
    if not 0 < sampling_rate <= 1:
        raise ValueError(f"sampling_rate must be in (0, 1], got {sampling_rate}")
    if rounds < 0:
        raise ValueError("rounds must be >= 0")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if rounds == 0:
        return 0.0
    rdp = [rounds * _subsampled_rdp(a, sampling_rate, noise_multiplier) for a in RDP_ORDERS]
    return float(compute_epsilon(list(RDP_ORDERS), rdp, delta)[0])
