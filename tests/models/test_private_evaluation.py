"""DP-FedAvg evaluation and the DP-friendly form of fcf, on the checkerboard."""

from __future__ import annotations

import numpy as np

from lerna.core.dp import PrivacyAccountant
from lerna.core.models import create_model
from lerna.core.models.factorization import FactorizationModel, split_labels
from lerna.sim.evaluation import Prepared
from lerna.sim.private_evaluation import calibrate, evaluate_private, train_dp

HYPER = {"dim": 2, "alpha": 8.0, "user_l2": 2.0}


def test_calibrated_noise_is_the_least_that_meets_epsilon() -> None:
    for eps, rounds in ((1.0, 3), (8.0, 3), (4.0, 10)):
        z = calibrate(eps, rounds, 1.0)
        assert PrivacyAccountant(z, 1.0, 1e-5).epsilon(rounds) <= eps
        assert PrivacyAccountant(z / 1.02, 1.0, 1e-5).epsilon(rounds) > eps


def test_per_user_fcf_proposes_unnormalised_statistics(board: Prepared) -> None:
    ex = board.examples[0]
    per_user = create_model("fcf", board.spec, {**HYPER, "per_user": True}, seed=3)
    default = create_model("fcf", board.spec, HYPER, seed=3)
    assert isinstance(per_user, FactorizationModel) and isinstance(default, FactorizationModel)
    for model in (per_user, default):
        model.fit_local(ex, board.catalog.features, np.random.default_rng(0))
    u1 = np.append(per_user.user, 1.0)
    pos, _ = split_labels(ex)
    np.testing.assert_allclose(per_user.global_weights()["gram"], np.outer(u1, u1), rtol=1e-5)
    np.testing.assert_allclose(per_user.global_weights()["item_count"][pos], 1.0)
    np.testing.assert_allclose(
        default.global_weights()["gram"] * len(ex), np.outer(u1, u1), rtol=1e-4
    )


def test_dp_rounds_without_clipping_or_noise_average_the_devices(board: Prepared) -> None:
    hyper = {**HYPER, "per_user": True}
    model, _, norms = train_dp(board, "fcf", 1, hyper, clip=0.0, z=0.0)
    assert len(norms) == len(board.users) and min(norms) > 0
    grams = []
    for ex in board.examples:
        device = create_model("fcf", board.spec, hyper, seed=0)
        device.fit_local(ex, board.catalog.features, np.random.default_rng(0))
        grams.append(device.global_weights()["gram"])
    np.testing.assert_allclose(model.global_weights()["gram"], np.mean(grams, axis=0), atol=1e-4)
    noisy, _, _ = train_dp(board, "fcf", 1, hyper, clip=1.0, z=1.0)
    assert not np.allclose(noisy.global_weights()["gram"], model.global_weights()["gram"])


def test_evaluate_private_reports_each_epsilon(board: Prepared) -> None:
    rows = evaluate_private(board, "fcf", 2, [1.0, 8.0], clip=1.0, hyper={"dim": 2})
    assert list(rows) == ["federated (no DP)", "DP epsilon=1", "DP epsilon=8"]
    assert rows["DP epsilon=8"]["z"] < rows["DP epsilon=1"]["z"]
    assert all(0.0 <= r["ndcg@10"] <= 1.0 for r in rows.values())
    assert rows["DP epsilon=1"]["epsilon"] <= 1.0 and rows["DP epsilon=1"]["clip_norm"] == 1.0
