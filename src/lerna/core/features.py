"""Feature encoding shared by the device (training, scoring) and the server (model shapes).

The server never sees a user's context or events; it only needs the *schema* so that every
device encodes features in the same order and the global weights line up across devices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

DAYPARTS = 6  # 4-hour buckets: night, early morning, morning, afternoon, evening, late evening
BUILTIN_CONTEXT = 2 + DAYPARTS + 7 + 1  # hour sin/cos, daypart one-hot, weekday one-hot, weekend

MetadataValue = str | float | int | bool | Sequence[str]


class FeatureError(ValueError):
    """A feature vector or item metadata that does not fit the app's schema."""


class ItemSchema(BaseModel):
    """How item metadata becomes a vector: categorical fields are multi-hot over a fixed
    vocabulary, numeric fields are scaled from [low, high] to [0, 1]."""

    model_config = ConfigDict(extra="forbid")

    categorical: dict[str, list[str]] = Field(default_factory=dict)
    numeric: dict[str, tuple[float, float]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> ItemSchema:
        for name, (low, high) in self.numeric.items():
            if not (math.isfinite(low) and math.isfinite(high) and high > low):
                raise ValueError(f"numeric feature {name!r} needs finite bounds with high > low")
        for name, vocab in self.categorical.items():
            if len(set(vocab)) != len(vocab):
                raise ValueError(f"categorical feature {name!r} has duplicate values")
        return self

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.categorical.values()) + len(self.numeric)

    def encode(self, metadata: Mapping[str, MetadataValue]) -> np.ndarray:
        """Encode one item's metadata; unknown categorical values are ignored (cold vocabulary)."""
        unknown = set(metadata) - set(self.categorical) - set(self.numeric)
        if unknown:
            raise FeatureError(f"unknown item metadata fields: {sorted(unknown)}")
        out = np.zeros(self.size, dtype=np.float32)
        pos = 0
        for name, vocab in self.categorical.items():
            raw = metadata.get(name, ())
            values = [raw] if isinstance(raw, str) else raw
            if not isinstance(values, Sequence):
                raise FeatureError(f"item metadata {name!r} must be a string or a list of strings")
            index = {v: i for i, v in enumerate(vocab)}
            for v in values:
                if v in index:
                    out[pos + index[v]] = 1.0
            pos += len(vocab)
        for name, (low, high) in self.numeric.items():
            raw_num = metadata.get(name)
            if raw_num is not None:
                if isinstance(raw_num, (str, Sequence)) or not math.isfinite(float(raw_num)):
                    raise FeatureError(f"item metadata {name!r} must be a finite number")
                out[pos] = np.clip((float(raw_num) - low) / (high - low), 0.0, 1.0)
            pos += 1
        return out


class FeatureSchema(BaseModel):
    """The app's whole feature layout: item metadata plus custom context features."""

    model_config = ConfigDict(extra="forbid")

    items: ItemSchema = Field(default_factory=ItemSchema)
    context_custom: list[str] = Field(default_factory=list, max_length=256)

    @property
    def context_size(self) -> int:
        return BUILTIN_CONTEXT + len(self.context_custom)


def encode_context(
    schema: FeatureSchema, when: datetime, custom: Sequence[float] = ()
) -> np.ndarray:
    """Context at one moment: time of day (cyclic and daypart), weekday, and the app's features."""
    if len(custom) != len(schema.context_custom):
        raise FeatureError(
            f"expected {len(schema.context_custom)} custom context features "
            f"({schema.context_custom}), got {len(custom)}"
        )
    values = np.asarray(custom, dtype=np.float64)
    if values.size and not np.all(np.isfinite(values)):
        raise FeatureError("custom context features must be finite numbers (no NaN or Inf)")
    out = np.zeros(schema.context_size, dtype=np.float32)
    hour = when.hour + when.minute / 60.0
    out[0] = math.sin(2 * math.pi * hour / 24)
    out[1] = math.cos(2 * math.pi * hour / 24)
    out[2 + int(when.hour // 4)] = 1.0
    out[2 + DAYPARTS + when.weekday()] = 1.0
    out[2 + DAYPARTS + 7] = 1.0 if when.weekday() >= 5 else 0.0
    out[BUILTIN_CONTEXT:] = values
    return out


@dataclass(frozen=True)
class ItemCatalog:
    """The items a model knows, in a fixed order shared by server and devices."""

    item_ids: tuple[str, ...]
    features: np.ndarray  # (n_items, schema.items.size) float32

    def __post_init__(self) -> None:
        if self.features.shape[0] != len(self.item_ids):
            raise FeatureError("one feature row is needed for every item")
        if len(set(self.item_ids)) != len(self.item_ids):
            raise FeatureError("item ids must be unique")

    @classmethod
    def build(
        cls, schema: ItemSchema, items: Mapping[str, Mapping[str, MetadataValue]]
    ) -> ItemCatalog:
        ids = tuple(items)
        feats = (
            np.stack([schema.encode(items[i]) for i in ids])
            if ids
            else np.zeros((0, schema.size), np.float32)
        )
        return cls(ids, feats.astype(np.float32))

    def index_of(self) -> dict[str, int]:
        return {item: i for i, item in enumerate(self.item_ids)}

    def __len__(self) -> int:
        return len(self.item_ids)
