"""The harness: splits, metric definitions and one small end-to-end run on MovieLens-100K."""

from __future__ import annotations

import numpy as np
import pytest

from lerna.core.metrics import map_at_k
from lerna.sim import movielens
from lerna.sim.evaluation import evaluate
from lerna.sim.movielens import Ratings
from lerna.sim.splits import stratified_split, temporal_split


def _ratings() -> Ratings:
    n = 10
    return Ratings(
        users=np.array([1] * n + [2] * 3, np.int64),
        items=np.array([f"m{i}" for i in range(n)] + ["a", "b", "c"], dtype=object),
        ratings=np.array([5, 1, 4, 2, 3, 5, 4, 1, 5, 3, 4, 4, 4], np.float32),
        timestamps=np.arange(n + 3, dtype=np.int64),
    )


def test_temporal_split_holds_out_the_newest_fifth() -> None:
    split = temporal_split(_ratings(), 1)
    assert list(split.train.items) == [f"m{i}" for i in range(8)]
    assert list(split.test.items) == ["m8", "m9"]
    assert split.relevant_items() == ["m8"]  # rated 5; m9 was rated 3


def test_stratified_split_is_seeded_and_keeps_every_rating() -> None:
    a, b = stratified_split(_ratings(), 1, seed=7), stratified_split(_ratings(), 1, seed=7)
    assert list(a.test.items) == list(b.test.items) and len(a.test) == 2 and len(a.train) == 8
    assert sorted([*a.train.items, *a.test.items]) == sorted(f"m{i}" for i in range(10))
    assert len(a.relevant_items()) == 2  # every held-out rating is relevant


def test_unknown_user_is_named() -> None:
    with pytest.raises(ValueError, match="user 3 has no ratings"):
        temporal_split(_ratings(), 3)


def test_map_divides_by_all_relevant_items_as_microsoft_recommenders_does() -> None:
    # hits at ranks 1 and 3: (1/1 + 2/3) / 4 relevant
    assert map_at_k([1, 9, 2, 8], [1, 2, 3, 4], k=10) == pytest.approx((1 + 2 / 3) / 4)


def test_small_run_beats_popularity_and_reports_every_entry() -> None:
    try:
        movielens.data_dir()
    except movielens.DatasetMissingError:
        pytest.skip("MovieLens-100K is not installed")
    final = evaluate(
        "stratified",
        "fcf",
        rounds=3,
        devices=150,
        seed=0,
        include=("federated", "centralized", "popularity"),
    )
    assert set(final) == {"federated", "centralized", "popularity"}
    for figures in final.values():
        assert set(figures) == {"ndcg@10", "precision@10", "recall@10", "map@10", "seconds"}
    assert final["federated"]["ndcg@10"] > 1.1 * final["popularity"]["ndcg@10"]
    assert final["federated"]["ndcg@10"] > 0.9 * final["centralized"]["ndcg@10"]
