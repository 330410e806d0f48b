"""Turning LLR correlators into the weights a query sums (the engine's ``scoring`` section).

Applied once at training time, so the query path stays a row gather and a bincount whatever the
scoring. With the defaults nothing changes and the weights are UR's raw LLR.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lerna.recommender.config import ScoringConfig


def _inverse_power(totals: NDArray[np.float64], power: float) -> NDArray[np.float64]:
    out = np.zeros_like(totals)
    positive = totals > 0
    out[positive] = totals[positive] ** -power
    return out


def shape_weights(matrix: sp.csr_matrix, scoring: ScoringConfig, weight: float) -> sp.csr_matrix:
    """``matrix[j, i]``: weight with which history item ``j`` points at primary item ``i``.

    Row normalisation first (each history item one vote), then target damping on the column
    totals of the result, then the indicator's weight.
    """
    m = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    if scoring.normalize_history:
        rows = np.asarray(m.sum(axis=1)).ravel()
        m = sp.csr_matrix(sp.diags(_inverse_power(rows, 1.0)) @ m)
    if scoring.target_damping > 0:
        cols = np.asarray(m.sum(axis=0)).ravel()
        m = sp.csr_matrix(m @ sp.diags(_inverse_power(cols, scoring.target_damping)))
    if weight != 1.0:
        m.data *= weight
    m.eliminate_zeros()
    m.sort_indices()
    return m


def popularity_prior(counts: NDArray[np.float64], scoring: ScoringConfig) -> NDArray[np.float64]:
    """``w * ln(1 + count)`` per item: zero everywhere unless ``popularityWeight`` is set."""
    if scoring.popularity_weight == 0:
        return np.zeros(counts.size)
    prior: NDArray[np.float64] = scoring.popularity_weight * np.log1p(np.maximum(counts, 0.0))
    return prior
