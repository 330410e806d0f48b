"""The engine's ``scoring`` section: hand-computed weights, and the default left as UR's LLR."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from lerna.recommender.cco import train_cco
from lerna.recommender.config import AlgorithmConfig, ScoringConfig
from lerna.recommender.scoring import shape_weights

from .helpers import Harness, buy_events, g_squared
from .test_cco import table

M = sp.csr_matrix(np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 2.0], [0.0, 0.0, 0.0]]))


def test_defaults_leave_llr_untouched() -> None:
    np.testing.assert_array_equal(shape_weights(M, ScoringConfig(), 1.0).toarray(), M.toarray())


def test_history_normalisation_gives_each_history_item_one_vote() -> None:
    got = shape_weights(M, ScoringConfig(normalize_history=True), 1.0).toarray()
    np.testing.assert_allclose(got, [[0.75, 0.25, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 0.0]])


def test_target_damping_divides_by_the_column_total_to_a_power() -> None:
    got = shape_weights(M, ScoringConfig(normalize_history=True, target_damping=0.5), 2.0)
    # column totals after normalisation: 0.75, 0.75, 0.5
    want = 2.0 * np.array([[0.75 / math.sqrt(0.75), 0.25 / math.sqrt(0.75), 0.0],
                           [0.0, 0.5 / math.sqrt(0.75), 0.5 / math.sqrt(0.5)], [0, 0, 0]])  # fmt: skip
    np.testing.assert_allclose(got.toarray(), want)


def test_popularity_prior_is_w_ln_1_plus_primary_events() -> None:
    config = AlgorithmConfig.model_validate(
        {"indicators": [{"name": "buy"}], "scoring": {"popularityWeight": 0.5}}
    )
    model = train_cco(config, table())
    assert model.prior is not None
    counts = {"a": 3, "b": 3, "c": 3, "d": 2, "e": 1}
    want = [0.5 * math.log1p(counts[str(i)]) for i in model.items]
    np.testing.assert_allclose(model.prior, want)


def test_scored_engine_over_http(harness: Harness) -> None:
    # u4 holds c, d. Plain LLR: a and b score LLR(a,c) each; e has no evidence.
    harness.create("plain", num=10)
    scoring = {"normalizeHistory": True, "popularityWeight": 1.0}
    harness.create("scored", num=10, scoring=scoring)
    for engine in ("plain", "scored"):
        harness.send(buy_events(), engine)
        harness.train(engine)
    plain = harness.query("plain", user="u4")
    assert [r["item"] for r in plain] == ["a", "b", "e"]
    assert plain[0]["score"] == pytest.approx(g_squared(1, 2, 2, 1))
    scored = harness.query("scored", user="u4")
    # c's correlators are d, a, b; normalised, a gets LLR(c,a) / (LLR(c,d) + 2 LLR(c,a))
    ca, cd = g_squared(1, 2, 2, 1), g_squared(2, 1, 0, 3)
    assert scored[0]["score"] == pytest.approx(ca / (cd + 2 * ca) + math.log1p(3))
    assert scored[2] == {"item": "e", "score": pytest.approx(math.log1p(1)), "props": {}}


def test_negative_indicator_weight_pushes_items_down(harness: Harness) -> None:
    buys = {"u1": ["a"], "u2": ["a"], "u3": ["b"], "u4": ["b"], "u5": ["a", "b"]}
    hated = {"u1": ["h"], "u2": ["h"], "fan": ["h"]}
    indicators = [{"name": "buy"}, {"name": "dislike", "weight": -1.0}]
    harness.create(indicators=indicators)
    harness.send(buy_events(buys) + buy_events(hated, "dislike"))
    harness.train()
    result = harness.query(user="fan")
    assert [r["item"] for r in result] == ["b", "a"]  # a would win the popularity tie by id
    assert result[1]["score"] < 0
