"""The federated factorization model: its solves, its uploads and what it learns."""

from __future__ import annotations

import numpy as np
import pytest

from lerna.core.models import Examples, create_model
from lerna.core.models.factorization import FactorizationModel, split_labels
from lerna.sim.evaluation import Prepared, metrics_of, score_all, train_centralized, train_federated

HYPER = {"dim": 2, "alpha": 8.0, "user_l2": 2.0}


def _model(board: Prepared, **hyper: float) -> FactorizationModel:
    model = create_model("fcf", board.spec, {**HYPER, **hyper}, seed=3)
    assert isinstance(model, FactorizationModel)
    return model


def test_user_solve_is_a_minimum_by_finite_differences(board: Prepared) -> None:
    model = _model(board)
    ex = Examples(board.examples[0].context[:2], np.array([0, 5]), np.array([1.0, 0.0], np.float32))
    v = model.item_vectors(board.catalog.features)
    pos, neg = split_labels(ex)
    u = model.solve_user(v, pos, neg)
    eps = 1e-5
    for j in range(u.size):
        step = np.zeros_like(u)
        step[j] = eps
        grad = (model.user_loss(v, u + step, pos, neg) - model.user_loss(v, u - step, pos, neg)) / (
            2 * eps
        )
        assert abs(grad) < 1e-5
        assert model.user_loss(v, u + 100 * step, pos, neg) > model.user_loss(v, u, pos, neg)


def test_one_full_round_aggregates_the_exact_sums(board: Prepared) -> None:
    model, _ = train_federated(board, "fcf", rounds=1, hyper=HYPER)
    w = model.global_weights()
    # Per-example averages: their ratios are exact population counts.
    counts = np.zeros(board.spec.n_items)
    for ex in board.examples:
        counts[np.unique(ex.items)] += 1
    users = len(board.users)
    np.testing.assert_allclose(w["item_count"] / w["user_count"][0] * users, counts, rtol=1e-5)
    np.testing.assert_allclose(w["gram"][-1, -1] / w["user_count"][0], 1.0, rtol=1e-5)
    sums = sum(len(ex) for ex in board.examples)
    np.testing.assert_allclose(w["user_count"][0], users / sums, rtol=1e-5)


def test_upload_never_carries_the_personal_state(board: Prepared) -> None:
    model = _model(board)
    assert not set(model.global_weights()) & set(model.personal_state())
    uploads = []
    for prior in (np.zeros(HYPER["dim"]), np.full(HYPER["dim"], 7.0)):
        device = _model(board)
        device.set_personal_state({"user": prior.astype(np.float32)})
        device.fit_local(board.examples[0], board.catalog.features, np.random.default_rng(0))
        uploads.append(device.global_weights())
        assert not np.allclose(device.personal_state()["user"], prior)
    for name in uploads[0]:
        np.testing.assert_array_equal(uploads[0][name], uploads[1][name])


def test_scoring_keeps_the_downloaded_version_after_a_fit(board: Prepared) -> None:
    device = _model(board)
    device.personalize(board.examples[1], board.catalog.features)
    items = np.arange(board.spec.n_items)
    before = device.score(board.examples[1].context[0], board.catalog.features, items)
    device.fit_local(board.examples[1], board.catalog.features, np.random.default_rng(0))
    after = device.score(board.examples[1].context[0], board.catalog.features, items)
    np.testing.assert_allclose(before, after, rtol=1e-5)


@pytest.mark.parametrize("how", ["federated", "centralized"])
def test_learns_the_checkerboard(board: Prepared, how: str) -> None:
    if how == "federated":
        model, personal = train_federated(board, "fcf", rounds=4, hyper=HYPER)
        scores = score_all(model, board, personal)
    else:
        scores = score_all(train_centralized(board, "fcf", HYPER), board)
    figures = metrics_of(scores, board)
    # Every user's 6 held-out items of its own group are in its top 10, nearly all first.
    assert figures["recall@10"] == pytest.approx(1.0)
    assert figures["ndcg@10"] > 0.99


def test_new_items_are_scored_from_their_metadata(board: Prepared) -> None:
    model, _ = train_federated(board, "fcf", rounds=4, hyper=HYPER)
    model.personalize(board.examples[0], board.catalog.features)  # user of group "a"
    meta = board.catalog.features[:2]  # rows of an "a" item and a "b" item
    scores = model.score(board.examples[0].context[0], meta, np.array([-1, -1]))
    assert scores[0] > scores[1]


def test_federated_stays_close_to_centralized_with_sampled_cohorts(board: Prepared) -> None:
    model, personal = train_federated(board, "fcf", rounds=6, hyper=HYPER, cohort=20, seed=1)
    assert metrics_of(score_all(model, board, personal), board)["recall@10"] > 0.95
