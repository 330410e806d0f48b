"""Feature encoding is deterministic and refuses what does not fit the schema."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from lerna.core.features import (
    BUILTIN_CONTEXT,
    FeatureError,
    FeatureSchema,
    ItemCatalog,
    ItemSchema,
    encode_context,
)

SCHEMA = ItemSchema(categorical={"genre": ["a", "b", "c"]}, numeric={"year": (2000, 2020)})


def test_item_encoding_multi_hot_and_scaled() -> None:
    np.testing.assert_allclose(SCHEMA.encode({"genre": ["a", "c"], "year": 2010}), [1, 0, 1, 0.5])
    np.testing.assert_allclose(SCHEMA.encode({"genre": "b", "year": 1990}), [0, 1, 0, 0.0])
    np.testing.assert_allclose(SCHEMA.encode({"genre": ["zzz"]}), [0, 0, 0, 0])


@pytest.mark.parametrize(
    "meta", [{"colour": "red"}, {"year": float("nan")}, {"year": "2010"}, {"genre": 3}]
)
def test_item_encoding_refuses_bad_metadata(meta: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(FeatureError):
        SCHEMA.encode(meta)


def test_context_encoding() -> None:
    schema = FeatureSchema(items=SCHEMA, context_custom=["battery"])
    saturday_evening = datetime(2024, 6, 1, 20, 30, tzinfo=UTC)
    ctx = encode_context(schema, saturday_evening, [0.5])
    assert ctx.shape == (BUILTIN_CONTEXT + 1,)
    assert ctx[2 + 5] == 1.0 and ctx[2 + 6 + 5] == 1.0 and ctx[2 + 6 + 7] == 1.0 and ctx[-1] == 0.5
    with pytest.raises(FeatureError):
        encode_context(schema, saturday_evening, [])
    with pytest.raises(FeatureError):
        encode_context(schema, saturday_evening, [float("inf")])


def test_schema_validation_and_catalog() -> None:
    with pytest.raises(ValueError):
        ItemSchema(numeric={"x": (1.0, 1.0)})
    with pytest.raises(ValueError):
        ItemSchema(categorical={"g": ["a", "a"]})
    cat = ItemCatalog.build(SCHEMA, {"i1": {"genre": "a"}, "i2": {"genre": "b"}})
    assert cat.index_of() == {"i1": 0, "i2": 1} and cat.features.shape == (2, 4)
