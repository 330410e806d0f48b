"""What every registered model promises: round trips, separation of state, bad weights refused."""

from __future__ import annotations

import numpy as np
import pytest

from lerna.core.models import MODEL_TYPES, Examples, ModelSpec, create_model
from lerna.core.models.logistic import LogisticModel
from lerna.core.weights import Manifest, dump_archive, layout_of, load_archive
from lerna.sim.evaluation import Prepared


@pytest.mark.parametrize("kind", sorted(MODEL_TYPES))
def test_weights_round_trip_through_the_archive_format(board: Prepared, kind: str) -> None:
    model = create_model(kind, board.spec, seed=1)
    model.fit_local(board.examples[0], board.catalog.features, np.random.default_rng(0))
    model.set_global_weights(model.global_weights())
    weights = model.global_weights()
    assert all(w.dtype == np.float32 for w in weights.values())
    manifest = Manifest(kind="model", model=kind, version=3, arrays=layout_of(weights))
    _, loaded = load_archive(dump_archive(manifest, weights))
    twin = create_model(kind, board.spec, seed=99)
    twin.set_global_weights(loaded)
    twin.set_personal_state(model.personal_state())
    items = np.arange(board.spec.n_items)
    ctx = board.examples[0].context[0]
    np.testing.assert_array_equal(
        model.score(ctx, board.catalog.features, items),
        twin.score(ctx, board.catalog.features, items),
    )


@pytest.mark.parametrize("kind", sorted(MODEL_TYPES))
def test_personal_state_is_never_a_global_weight(board: Prepared, kind: str) -> None:
    model = create_model(kind, board.spec)
    model.fit_local(board.examples[0], board.catalog.features, np.random.default_rng(0))
    assert not set(model.global_weights()) & set(model.personal_state())
    model.reset_personal_state()
    assert all(not np.any(a) for a in model.personal_state().values())


@pytest.mark.parametrize("kind", sorted(MODEL_TYPES))
def test_malformed_weights_are_refused(board: Prepared, kind: str) -> None:
    model = create_model(kind, board.spec)
    good = model.global_weights()
    name = sorted(good)[0]
    with pytest.raises(ValueError, match="shape"):
        model.set_global_weights({**good, name: np.zeros((1, 1, 1), np.float32)})
    with pytest.raises(ValueError, match="NaN"):
        model.set_global_weights({**good, name: np.full_like(good[name], np.nan)})
    with pytest.raises(ValueError, match="must be"):
        model.set_global_weights({name: good[name]} if len(good) > 1 else {})


def test_unknown_model_kind_is_named() -> None:
    with pytest.raises(ValueError, match="unknown model type 'mlp'"):
        create_model("mlp", ModelSpec(2, 2, 2))


def test_logistic_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(5)
    spec = ModelSpec(n_context=3, n_item_features=2, n_items=6)
    model = LogisticModel(spec, {"l2": 0.1, "personal_l2": 0.2}, seed=0)
    model.w = rng.normal(size=model.w.shape).astype(np.float32)
    model.p = rng.normal(size=model.p.shape).astype(np.float32)
    feats = rng.random((6, 2)).astype(np.float32)
    ex = Examples(
        rng.random((8, 3)).astype(np.float32),
        rng.integers(0, 6, 8),
        rng.integers(0, 2, 8).astype(np.float32),
    )
    grads = model.gradients(ex, feats)
    eps = 1e-3
    for name in ("w", "b", "p"):
        param = getattr(model, name)
        for j in range(param.size):
            old = param[j]
            param[j] = old + eps
            up = model.loss(ex, feats)
            param[j] = old - eps
            down = model.loss(ex, feats)
            param[j] = old
            assert grads[name][j] == pytest.approx((up - down) / (2 * eps), abs=2e-3)
