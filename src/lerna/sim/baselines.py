"""Baselines that see all the training data at once: popularity and `implicit`'s ALS and BPR.

They are what a team would use instead of Lerna if privacy did not matter, so they run in the
same process on the same split. Each returns a dense (users x items) score matrix; the harness
removes seen items and ranks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix


def popularity_scores(interactions: csr_matrix) -> np.ndarray:
    """Every user gets the same ranking: items by number of users in training."""
    counts = np.asarray(interactions.sum(axis=0), dtype=np.float64).ravel()
    return np.broadcast_to(counts, interactions.shape).copy()


def _implicit_scores(make: Callable[[], Any], interactions: csr_matrix) -> np.ndarray:
    """Fit with BLAS single-threaded, as `implicit` asks (it parallelises by itself)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        model = make()
        model.fit(interactions, show_progress=False)
    users = np.asarray(model.user_factors)
    items = np.asarray(model.item_factors)
    return np.asarray(users @ items.T, dtype=np.float64)


def als_scores(
    interactions: csr_matrix, seed: int, factors: int = 64, iterations: int = 15
) -> np.ndarray:
    """Implicit ALS (Hu et al. 2008), the centralized twin of our federated factorization."""
    from implicit.cpu.als import AlternatingLeastSquares

    def make() -> Any:
        return AlternatingLeastSquares(
            factors=factors,
            regularization=0.05,
            alpha=2.0,
            iterations=iterations,
            random_state=seed,
            num_threads=2,
        )

    return _implicit_scores(make, interactions.astype(np.float32))


def bpr_scores(
    interactions: csr_matrix, seed: int, factors: int = 100, iterations: int = 100
) -> np.ndarray:
    """Bayesian Personalized Ranking (Rendle et al. 2009), as the MS table's BPR row."""
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    def make() -> Any:
        return BayesianPersonalizedRanking(
            factors=factors,
            learning_rate=0.01,
            regularization=0.01,
            iterations=iterations,
            random_state=seed,
            num_threads=2,
        )

    return _implicit_scores(make, interactions.astype(np.float32))
