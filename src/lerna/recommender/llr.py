"""Dunning's log-likelihood ratio, vectorised over the cells of a co-occurrence matrix.

The statistic is G-squared of the 2x2 contingency table of users: k11 did both things, k12 only
the first, k21 only the second, k22 neither. It is written with entropies exactly as Mahout's
``LogLikelihood.logLikelihoodRatio`` so that scores match UR's bit for bit (up to float rounding),
and it is computed on whole arrays because a per-cell Python loop would dominate training.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _x_log_x(x: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.zeros_like(x)
    positive = x > 0
    out[positive] = x[positive] * np.log(x[positive])
    return out


def _entropy(*counts: NDArray[np.float64]) -> NDArray[np.float64]:
    total = np.zeros_like(counts[0])
    parts = np.zeros_like(counts[0])
    for c in counts:
        total = total + c
        parts = parts + _x_log_x(c)
    return _x_log_x(total) - parts


def log_likelihood_ratio(
    k11: ArrayLike, k12: ArrayLike, k21: ArrayLike, k22: ArrayLike
) -> NDArray[np.float64]:
    """G-squared for each cell; never negative (round-off below zero is clamped to 0)."""
    a = np.asarray(k11, dtype=np.float64)
    b = np.asarray(k12, dtype=np.float64)
    c = np.asarray(k21, dtype=np.float64)
    d = np.asarray(k22, dtype=np.float64)
    if np.any(a < 0) or np.any(b < 0) or np.any(c < 0) or np.any(d < 0):
        raise ValueError("contingency counts must be non-negative")
    row = _entropy(a + b, c + d)
    col = _entropy(a + c, b + d)
    mat = _entropy(a, b, c, d)
    return np.maximum(2.0 * (row + col - mat), 0.0)
