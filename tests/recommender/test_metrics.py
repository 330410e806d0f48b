"""Ranking metrics on cases small enough to check by hand."""

from __future__ import annotations

import math

import pytest

from lerna.recommender.metrics import ranking_metrics


def test_one_user_hand_computed() -> None:
    # relevant {a, c, x}; predicted a, b, c: hits at ranks 1 and 3
    got = ranking_metrics({"u": {"a", "c", "x"}}, {"u": ["a", "b", "c"]}, k=3)
    assert got.precision == pytest.approx(2 / 3)
    assert got.map == pytest.approx((1 / 1 + 2 / 3) / 3)  # divided by all 3 relevant items
    dcg = 1 / math.log(2) + 1 / math.log(4)
    ideal = 1 / math.log(2) + 1 / math.log(3) + 1 / math.log(4)
    assert got.ndcg == pytest.approx(dcg / ideal)
    assert got.recall == pytest.approx(2 / 3)


def test_only_users_in_both_count_and_misses_score_zero() -> None:
    got = ranking_metrics(
        {"u": {"a"}, "v": {"b"}, "w": {"c"}}, {"u": ["a"], "v": ["z"], "only-pred": ["a"]}, k=1
    )
    assert got.users == 2
    assert got.precision == pytest.approx(0.5)
    assert got.ndcg == pytest.approx(0.5)
    assert got.map == pytest.approx(0.5)
