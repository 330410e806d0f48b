"""CCO training on the hand-checked purchases: correlators, caps and the saved model."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lerna.recommender import llr
from lerna.recommender.cco import EventTable, _top_k_dense_blocks, _top_k_sorting, train_cco
from lerna.recommender.config import AlgorithmConfig
from lerna.recommender.errors import JobCancelledError
from lerna.recommender.llr import llr_of_cooccurrence, log_likelihood_ratio
from lerna.recommender.model import CCOModel

from .helpers import BUYS, g_squared


def table(buys: dict[str, list[str]] = BUYS, event: str = "buy") -> EventTable:
    rows = [(u, i, event, float(t)) for u, items in buys.items() for t, i in enumerate(items)]
    return EventTable.from_rows(rows)


def config(**extra: object) -> AlgorithmConfig:
    return AlgorithmConfig.model_validate({"indicators": [{"name": "buy"}], **extra})


def test_correlators_are_the_hand_computed_llr() -> None:
    model = train_cco(config(), table())
    got = model.correlators_of("c")["buy"]
    # c-d: 2 together, c alone 1, d alone 0, neither 3; c-a and c-b: 1, 2, 2, 1; c-e never
    assert [i for i, _ in got] == ["d", "a", "b"]
    np.testing.assert_allclose(
        [w for _, w in got], [g_squared(2, 1, 0, 3), g_squared(1, 2, 2, 1), g_squared(1, 2, 2, 1)]
    )
    assert model.correlators_of("a")["buy"][0] == ("b", pytest.approx(g_squared(3, 0, 0, 3)))
    assert model.correlators_of("e")["buy"] == []


def test_max_correlators_and_min_llr_prune() -> None:
    capped = train_cco(config(maxCorrelatorsPerItem=1), table())
    assert [i for i, _ in capped.correlators_of("c")["buy"]] == ["d"]
    strong = train_cco(config(minLlr=1.0), table())
    assert [i for i, _ in strong.correlators_of("c")["buy"]] == ["d"]
    per_indicator = AlgorithmConfig.model_validate(
        {"indicators": [{"name": "buy", "maxCorrelatorsPerItem": 2}]}
    )
    assert len(train_cco(per_indicator, table()).correlators_of("c")["buy"]) == 2


def test_per_user_cap_keeps_the_newest_events() -> None:
    # u3 bought a, b, c in that order; with a cap of 1 only c is left for u3
    model = train_cco(config(maxEventsPerEventType=1), table())
    assert model.correlators_of("a")["buy"] == []  # every user now holds one item: no pairs


def test_secondary_indicator_correlates_with_primary() -> None:
    buys = table({"u1": ["a"], "u2": ["a"], "u3": ["b"], "u4": ["b"]})
    views = table({"u1": ["v1"], "u2": ["v1"], "u3": ["v2"], "u4": ["v2"]}, "view")
    both = EventTable(
        np.concatenate([buys.users, views.users]),
        np.concatenate([buys.items, views.items]),
        np.concatenate([buys.indicator, views.indicator]),
        np.concatenate([buys.times, views.times]),
    )
    cfg = AlgorithmConfig.model_validate({"indicators": [{"name": "buy"}, {"name": "view"}]})
    model = train_cco(cfg, both)
    assert model.correlators_of("b")["view"] == [("v2", pytest.approx(g_squared(2, 0, 0, 2)))]


def test_popularity_ranking_counts_primary_events() -> None:
    model = train_cco(config(), table())
    assert dict(zip(model.items.tolist(), model.rankings[0].scores.tolist(), strict=True)) == {
        "a": 3.0, "b": 3.0, "c": 3.0, "d": 2.0, "e": 1.0,
    }  # fmt: skip


def test_trending_and_hot_compare_periods() -> None:
    # item x: 1 event long ago, 3 recently; item y: 3 long ago, 1 recently
    rows = [("u1", "x", "buy", 1.0)] + [(f"r{k}", "x", "buy", 90.0 + k) for k in range(3)]
    rows += [(f"o{k}", "y", "buy", 2.0 + k) for k in range(3)] + [("u9", "y", "buy", 95.0)]
    cfg = config(rankings=[{"name": "t", "type": "trending", "duration": 100}])
    scores = train_cco(cfg, EventTable.from_rows(rows)).rankings[0].scores
    assert scores.tolist() == [2.0, -2.0]  # x: 3 - 1, y: 1 - 3
    hot = config(rankings=[{"name": "h", "type": "hot", "duration": 99}])
    assert train_cco(hot, EventTable.from_rows(rows)).rankings[0].scores[0] > 0


def test_model_round_trips_through_npz_bytes() -> None:
    model = train_cco(config(), table())
    back = CCOModel.from_bytes(model.to_bytes())
    assert back.items.tolist() == model.items.tolist()
    assert back.correlators_of("c") == model.correlators_of("c")
    assert back.rankings[0].scores.tolist() == model.rankings[0].scores.tolist()


def test_checkpoint_can_abort_training() -> None:
    calls = []

    def checkpoint() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise JobCancelledError("stop")

    with pytest.raises(JobCancelledError):
        train_cco(config(), table(), checkpoint=checkpoint)


def test_empty_data_trains_an_empty_model() -> None:
    model = train_cco(config(), EventTable.from_rows([]))
    assert model.items.size == 0


def test_dense_and_sorting_top_k_agree_with_ties() -> None:
    rng = np.random.default_rng(7)
    dense = rng.integers(0, 6, size=(40, 30)).astype(np.float64)  # many ties, some zeros
    m = sp.csr_matrix(dense)
    for k, min_llr in ((1, 0.0), (5, 0.0), (5, 2.0), (30, 0.0), (50, 1.0)):
        want = _top_k_sorting(m, k, min_llr).toarray()
        np.testing.assert_array_equal(_top_k_dense_blocks(m, k, min_llr).toarray(), want)
        assert ((want > 0).sum(axis=1) <= k).all()
    # ties at the k-th value go to the lower column
    row = sp.csr_matrix(np.array([[1.0, 3.0, 2.0, 2.0, 2.0]]))
    np.testing.assert_array_equal(_top_k_dense_blocks(row, 3, 0.0).toarray(), [[0, 3, 2, 2, 0]])


@pytest.mark.parametrize("table_max", [10_000_000, 0])  # table lookup, and the log fallback
def test_fast_llr_equals_the_entropy_form(table_max: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llr, "_TABLE_MAX", table_max)
    rng = np.random.default_rng(3)
    n = 500.0
    a_counts = rng.integers(1, 200, 20).astype(np.float64)
    b_counts = rng.integers(1, 200, 25).astype(np.float64)
    rows, cols = rng.integers(0, 20, 300), rng.integers(0, 25, 300)
    k11 = np.floor(rng.random(300) * np.minimum(a_counts[rows], b_counts[cols]))
    got = llr_of_cooccurrence(k11, rows, cols, a_counts, b_counts, n)
    want = log_likelihood_ratio(k11, a_counts[rows] - k11, b_counts[cols] - k11,
                                n - a_counts[rows] - b_counts[cols] + k11)  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
