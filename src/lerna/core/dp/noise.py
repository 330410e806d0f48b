"""Gaussian noise for DP-FedAvg, central or split across devices.

Distributed noise: if each of m devices adds N(0, sigma^2 / m), the sum of the m carries
N(0, sigma^2), the same as one central draw, while each device's own upload is only lightly
noised (secure aggregation hides it anyway). The catch is dropouts: if devices calibrate for m
but only m' < m survive, the sum carries only sigma^2 * m' / m. Calibrating for `t` (the least
number of survivors secure aggregation accepts) keeps the guarantee at the price of extra noise
when more devices survive; that is what `distributed_noise_std(..., expected_survivors=t)` is for.

The generator is a parameter so tests are reproducible; production callers seed it from the OS
(`np.random.default_rng()`). These float samplers are for simulations, where nothing is
released: floating-point Gaussian sampling is not a hardened DP sampler (Mironov 2012), so noise
that is released is drawn on the quantised lattice by `lerna.core.dp.discrete` instead.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt


def _check(clip_norm: float, noise_multiplier: float) -> None:
    if not (math.isfinite(clip_norm) and clip_norm > 0):
        raise ValueError(f"clip_norm must be positive and finite, got {clip_norm}")
    if not (math.isfinite(noise_multiplier) and noise_multiplier >= 0):
        raise ValueError(f"noise_multiplier must be >= 0 and finite, got {noise_multiplier}")


def central_noise(
    dim: int, clip_norm: float, noise_multiplier: float, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """N(0, (z S)^2) per coordinate: the noise the whole sum needs."""
    _check(clip_norm, noise_multiplier)
    return rng.normal(0.0, noise_multiplier * clip_norm, size=dim)


def distributed_noise_std(
    clip_norm: float, noise_multiplier: float, expected_survivors: int
) -> float:
    """Per-device standard deviation z S / sqrt(m) so that m devices' noise sums to z S."""
    _check(clip_norm, noise_multiplier)
    if expected_survivors < 1:
        raise ValueError("expected_survivors must be >= 1")
    return noise_multiplier * clip_norm / math.sqrt(expected_survivors)


def distributed_noise(
    dim: int,
    clip_norm: float,
    noise_multiplier: float,
    expected_survivors: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    """One device's share of the noise: N(0, (z S)^2 / m) per coordinate."""
    std = distributed_noise_std(clip_norm, noise_multiplier, expected_survivors)
    return rng.normal(0.0, std, size=dim)
