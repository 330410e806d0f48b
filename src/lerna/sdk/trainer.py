"""Turns the user's local events into training and held-out examples, and evaluates.

The newest ``holdout_fraction`` of the user's history is never trained on: it is where the
device measures the global model, so the accuracy it reports is honest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lerna.core.dp import PrivacyConfig
from lerna.core.metrics import ranking_metrics, top_k
from lerna.core.models import MODEL_TYPES, Examples, Model
from lerna.core.secure_update import dp_active
from lerna.sdk.store import Event


@dataclass(frozen=True)
class Split:
    train: list[Event]
    holdout: list[Event]


def training_hyper(
    model_type: str, hyper: Mapping[str, Any], privacy: PrivacyConfig
) -> dict[str, Any]:
    """The hyper-parameters this device trains with: the task's, in their per-user form under DP.

    Under DP every device enters the sum with weight 1 (``lerna.core.secure_update``), so a
    model whose proposal is normalised per example (fcf by default: its statistics divided by
    the device's example count, to be re-weighted by that count) would weigh each user by
    1 / examples. A model that offers a ``per_user`` form proposes its unnormalised per-user
    statistics instead, which is what a weight-1 sum of users needs; the device picks it from
    the task's privacy, so a task needs no extra setting and cannot get the two out of step.
    Without DP the task's hyper-parameters are used as they are."""
    chosen = dict(hyper)
    cls = MODEL_TYPES.get(model_type)
    if cls is not None and dp_active(privacy) and "per_user" in cls.Hyper.model_fields:
        chosen["per_user"] = True
    return chosen


def split_events(events: list[Event], holdout_fraction: float) -> Split:
    """Temporal split: events are in time order; the last fraction is held out."""
    n_hold = round(len(events) * holdout_fraction) if len(events) >= 5 else 0
    cut = len(events) - n_hold
    return Split(events[:cut], events[cut:])


def to_examples(events: list[Event], index: dict[str, int], n_context: int) -> Examples:
    known = [e for e in events if e.item_id in index]
    if not known:
        return Examples(
            np.zeros((0, n_context), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32)
        )
    return Examples(
        context=np.asarray([e.context for e in known], dtype=np.float32),
        items=np.asarray([index[e.item_id] for e in known], dtype=np.int64),
        labels=np.asarray([e.label for e in known], dtype=np.float32),
    )


def is_relevant(event: Event, min_value: float | None) -> bool:
    """A held-out event counts as a hit to find when it succeeded (and was strong enough)."""
    if event.label <= 0.5:
        return False
    return min_value is None or (event.value is not None and event.value >= min_value)


def evaluate(
    model: Model,
    split: Split,
    index: dict[str, int],
    item_features: np.ndarray,
    k: int = 10,
    min_value: float | None = None,
) -> dict[str, float] | None:
    """Rank every catalog item the user has not met in training; relevant are the held-out
    events that succeeded (with ``value >= min_value`` when given)."""
    relevant = {
        index[e.item_id] for e in split.holdout if e.item_id in index and is_relevant(e, min_value)
    }
    if not relevant:
        return None
    seen = {index[e.item_id] for e in split.train if e.item_id in index}
    context = np.asarray(split.holdout[0].context, dtype=np.float32)
    scores = model.score(context, item_features, np.arange(item_features.shape[0]))
    return ranking_metrics(top_k(scores, k, exclude=seen), relevant, k)
