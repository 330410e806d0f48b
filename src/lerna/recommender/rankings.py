"""Backfill rankings: popular, trending, hot, random and user-defined.

They order items when personal evidence runs out (new users, strict rules) and break ties.
Periods end at ``offsetDate`` when given, else at the newest event in the data: with replayed
or bulk-imported history, "now" would leave every period empty.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from lerna.recommender.config import AlgorithmConfig, RankingConfig, parse_duration
from lerna.recommender.model import Ranking

if TYPE_CHECKING:
    from lerna.recommender.cco import EventTable


def _counts(
    items: NDArray[np.str_],
    index: NDArray[np.str_],
    times: NDArray[np.float64],
    lo: float,
    hi: float,
) -> NDArray[np.float64]:
    """Events per item of ``index`` with ``lo < time <= hi``."""
    if index.size == 0:
        return np.zeros(0)
    chosen = items[(times > lo) & (times <= hi)]
    pos = np.searchsorted(index, chosen)
    valid = (pos < index.size) & (index[np.minimum(pos, index.size - 1)] == chosen)
    return np.bincount(pos[valid], minlength=index.size).astype(np.float64)


def _one_ranking(
    spec: RankingConfig,
    config: AlgorithmConfig,
    events: EventTable,
    items: NDArray[np.str_],
    reference: float,
    rng: np.random.Generator,
) -> Ranking:
    if spec.type == "random":
        return Ranking(spec.name, spec.type, rng.random(items.size))
    if spec.type == "userDefined":  # read from item properties at query time
        return Ranking(spec.name, spec.type, np.zeros(items.size))
    names = spec.event_names or [config.indicators[0].name]
    mask = np.isin(events.indicator, names)
    ev_items, ev_times = events.items[mask], events.times[mask]
    end = reference
    if spec.offset_date is not None:
        end = datetime.fromisoformat(spec.offset_date.replace("Z", "+00:00")).timestamp()
    span = parse_duration(spec.duration) if spec.duration is not None else float("inf")
    if spec.type == "popular":
        return Ranking(spec.name, spec.type, _counts(ev_items, items, ev_times, end - span, end))
    if span == float("inf"):
        span = end - float(ev_times.min()) + 1.0 if ev_times.size else 1.0
    if spec.type == "trending":  # velocity: second half minus first half
        half = span / 2
        recent = _counts(ev_items, items, ev_times, end - half, end)
        older = _counts(ev_items, items, ev_times, end - span, end - half)
        return Ranking(spec.name, spec.type, recent - older)
    third = span / 3  # hot: acceleration over three periods
    c3 = _counts(ev_items, items, ev_times, end - third, end)
    c2 = _counts(ev_items, items, ev_times, end - 2 * third, end - third)
    c1 = _counts(ev_items, items, ev_times, end - span, end - 2 * third)
    return Ranking(spec.name, spec.type, (c3 - c2) - (c2 - c1))


def compute_rankings(
    config: AlgorithmConfig,
    events: EventTable,
    items: NDArray[np.str_],
    reference: float,
    rng: np.random.Generator,
) -> list[Ranking]:
    """One score vector per configured ranking, aligned with the sorted primary ``items``."""
    return [_one_ranking(s, config, events, items, reference, rng) for s in config.rankings]
