"""Synthetic data whose right answer is known, shared by the model tests."""

from __future__ import annotations

import numpy as np
import pytest

from lerna.core.features import FeatureSchema, ItemCatalog, ItemSchema
from lerna.core.models import Examples
from lerna.sim.evaluation import Prepared

N_USERS, N_ITEMS, GROUPS = 40, 24, 2


def checkerboard(seed: int = 0) -> Prepared:
    """Users and items in two groups; a user chose half the items of its own group only.

    Each item's metadata names its group, so metadata alone can also place a new item.
    The held-out half of the user's own group is what a model must rank first.
    """
    rng = np.random.default_rng(seed)
    schema = FeatureSchema(items=ItemSchema(categorical={"group": ["a", "b"]}))
    items = {f"i{i}": {"group": "ab"[i % GROUPS]} for i in range(N_ITEMS)}
    catalog = ItemCatalog.build(schema.items, items)
    examples, relevant = [], []
    for u in range(N_USERS):
        own = np.arange(u % GROUPS, N_ITEMS, GROUPS)
        chosen = rng.permutation(own)
        half = own.size // 2
        ctx = np.zeros((half, schema.context_size), np.float32)
        examples.append(Examples(ctx, chosen[:half].astype(np.int64), np.ones(half, np.float32)))
        relevant.append(np.sort(chosen[half:]).astype(np.int64))
    return Prepared("temporal", schema, catalog, list(range(N_USERS)), examples, relevant)


@pytest.fixture
def board() -> Prepared:
    return checkerboard()
