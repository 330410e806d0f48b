"""LLR against closed forms and an independent G-squared written as sum O ln(O/E)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lerna.recommender.llr import log_likelihood_ratio

from .helpers import g_squared


def test_perfect_association_is_4k_ln2() -> None:
    got = log_likelihood_ratio([1, 10], [0, 0], [0, 0], [1, 10])
    np.testing.assert_allclose(got, [4 * math.log(2), 40 * math.log(2)], rtol=1e-12)


@pytest.mark.parametrize(
    "cell",
    [(5, 1995, 0, 100000), (1000, 1995, 1000, 100000), (3, 0, 0, 3), (1, 2, 2, 1), (2, 1, 0, 3)],
)
def test_matches_independent_g_squared(cell: tuple[int, int, int, int]) -> None:
    got = log_likelihood_ratio(*([c] for c in cell))[0]
    assert got == pytest.approx(g_squared(*cell), rel=1e-9)


def test_independence_scores_zero_and_never_negative() -> None:
    got = log_likelihood_ratio([10, 0], [10, 0], [10, 0], [10, 5])
    np.testing.assert_allclose(got, [0.0, 0.0], atol=1e-9)
    assert (got >= 0).all()


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        log_likelihood_ratio([1], [-1], [0], [0])
