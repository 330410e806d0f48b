"""Dunning's log-likelihood ratio, vectorised over the cells of a co-occurrence matrix.

The statistic is G-squared of the 2x2 contingency table of users: k11 did both things, k12 only
the first, k21 only the second, k22 neither. It is written with entropies exactly as Mahout's
``LogLikelihood.logLikelihoodRatio`` so that scores match UR's bit for bit (up to float rounding),
and it is computed on whole arrays because a per-cell Python loop would dominate training.
"""

from __future__ import annotations

import math

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


def _xlogx_counts(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``x ln x`` for counts (0 or >= 1), without masking: ``0 * ln 1`` is 0."""
    out: NDArray[np.float64] = x * np.log(np.maximum(x, 1.0))
    return out


def llr_of_cooccurrence(
    k11: NDArray[np.float64],
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    a_counts: NDArray[np.float64],
    b_counts: NDArray[np.float64],
    n: float,
) -> NDArray[np.float64]:
    """The same G-squared as ``log_likelihood_ratio``, for the cells of ``A'B``.

    Training scores millions of cells whose margins repeat along rows and columns; expanding
    Mahout's entropies gives ``2 (sum_cells x ln x + N ln N - sum_margins x ln x)``, so only the
    four cell terms are computed per cell and the margin terms once per item, then gathered.
    ``k11[c]`` users did both ``rows[c]`` of A and ``cols[c]`` of B; ``a_counts``/``b_counts``
    are the users per item of A and of B; ``n`` all users.
    """
    a = a_counts[rows]
    b = b_counts[cols]
    if n <= _TABLE_MAX:  # counts are integers 0..n: x ln x by table lookup, not by log
        table = _xlogx_counts(np.arange(int(n) + 1, dtype=np.float64))
        k = k11.astype(np.int64)
        ai, bi = a.astype(np.int64), b.astype(np.int64)
        cells = table[k] + table[ai - k] + table[bi - k] + table[int(n) - ai - bi + k]
    else:
        cells = (
            _xlogx_counts(k11)
            + _xlogx_counts(a - k11)
            + _xlogx_counts(b - k11)
            + _xlogx_counts(n - a - b + k11)
        )
    ha = _xlogx_counts(a_counts) + _xlogx_counts(n - a_counts)
    hb = _xlogx_counts(b_counts) + _xlogx_counts(n - b_counts)
    nn = float(n) * math.log(max(float(n), 1.0))
    out: NDArray[np.float64] = np.maximum(2.0 * (cells + nn - ha[rows] - hb[cols]), 0.0)
    return out


_TABLE_MAX = 10_000_000
"""Users up to which ``x ln x`` of a count is looked up in a table (80 MB at the limit)."""
