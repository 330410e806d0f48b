"""Query scoring: correlator hits, rule boosts and filters, blacklists, ranking backfill.

The order of an answer is a lexicographic sort on (personal score x boosts, boosts, rankings in
configured order, item id): items with evidence come first, and when evidence runs out the
remaining items that pass the filters follow by boost and popularity, so an answer is never short
while the catalogue still holds eligible items.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from lerna.recommender.catalog import ItemCatalog
from lerna.recommender.config import AlgorithmConfig
from lerna.recommender.history import history_positions, history_rows
from lerna.recommender.model import CCOModel, Correlators
from lerna.recommender.schemas import Query, ResultItem


@dataclass(frozen=True)
class InstalledModel:
    """A model plus where its items sit in the catalogue; swapped as one reference."""

    model: CCOModel
    positions: NDArray[np.int64]

    @classmethod
    def install(cls, model: CCOModel, catalog: ItemCatalog) -> InstalledModel:
        return cls(model, catalog.positions(model.items.tolist()))


def _hits(corr: Correlators, items: Sequence[str], n_items: int) -> NDArray[np.float64]:
    """Summed weights of the correlators the given items hit, for every primary item."""
    rows = history_rows(corr, items)
    if rows.size == 0:
        return np.zeros(n_items)
    m = corr.matrix
    starts, ends = m.indptr[rows], m.indptr[rows + 1]
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(n_items)
    before = np.cumsum(lengths) - lengths  # entries of the rows gathered before this one
    offsets = np.repeat(starts - before, lengths) + np.arange(total)
    hits: NDArray[np.float64] = np.bincount(
        m.indices[offsets], weights=m.data[offsets], minlength=n_items
    ).astype(np.float64)
    return hits


def personal_scores(
    model: CCOModel, history: Mapping[str, Sequence[str]], item_query: Sequence[str],
    user_bias: float, item_bias: float,
) -> NDArray[np.float64]:  # fmt: skip
    """User part (history per indicator) plus item part (the query items in every indicator)."""
    n = model.items.size
    scores = np.zeros(n)
    for corr in model.correlators:
        if history.get(corr.name):
            scores += user_bias * _hits(corr, history[corr.name], n)
        if item_query:
            scores += item_bias * _hits(corr, item_query, n)
    return scores


def _epoch(value: object) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else time.time()


def recommend(
    config: AlgorithmConfig,
    installed: InstalledModel | None,
    catalog: ItemCatalog,
    query: Query,
    history: Mapping[str, Sequence[str]],
) -> list[ResultItem]:
    """Answer one query. ``history`` is the user's newest items per indicator (may be empty)."""
    n = len(catalog)
    item_query = [query.item] if query.item else []
    item_query += query.item_set or []
    score = np.zeros(n)
    rank_keys: list[NDArray[np.float64]] = []
    if installed is not None:
        model = installed.model
        pos = installed.positions
        score[pos] = personal_scores(model, history, item_query, query.user_bias, query.item_bias)
        if model.prior is not None:
            score[pos] += model.prior
        for ranking in model.rankings:
            key = np.zeros(n)
            if ranking.type == "userDefined":
                key = np.nan_to_num(catalog.numeric(ranking.name)[:n], nan=0.0)
            else:
                key[pos] = ranking.scores
            rank_keys.append(key)
    eligible = np.ones(n, dtype=bool)
    boost = np.ones(n)
    for rule in query.rules:
        hit = catalog.matches(rule.name, rule.values)[:n]
        if rule.bias > 0:
            boost[hit] *= rule.bias
        elif rule.bias < 0:
            eligible &= hit
        else:
            eligible &= ~hit
    if query.date_range is not None:
        dates = catalog.numeric(query.date_range.name)[:n]
        with np.errstate(invalid="ignore"):
            inside = ~np.isnan(dates)
            if query.date_range.after is not None:
                inside &= dates > query.date_range.after.timestamp()
            if query.date_range.before is not None:
                inside &= dates < query.date_range.before.timestamp()
        eligible &= inside
    now = _epoch(query.current_date)
    with np.errstate(invalid="ignore"):
        if config.available_date_name:
            available = catalog.numeric(config.available_date_name)[:n]
            eligible &= np.isnan(available) | (available <= now)
        if config.expire_date_name:
            expires = catalog.numeric(config.expire_date_name)[:n]
            eligible &= np.isnan(expires) | (expires > now)
    return_self = config.return_self if query.return_self is None else query.return_self
    excluded = query.blacklist_items if return_self else [*query.blacklist_items, *item_query]
    eligible[catalog.known(excluded)] = False
    for name in config.blacklist:
        if history.get(name):
            eligible[history_positions(catalog, history[name])] = False
    final = score * boost
    need = query.from_ + (query.num or config.num)
    candidates = np.flatnonzero(eligible & (final > 0))
    if candidates.size < need:
        candidates = np.flatnonzero(eligible)
    if candidates.size > need > 0:  # only items scoring at least the need-th best can place
        cut = np.partition(final[candidates], candidates.size - need)[candidates.size - need]
        candidates = candidates[final[candidates] >= cut]
    id_rank = catalog.id_rank()[:n]
    keys: list[NDArray[np.generic]] = [id_rank[candidates]]
    keys += [-k[candidates] for k in reversed(rank_keys)]
    keys += [-boost[candidates], -final[candidates]]
    order = candidates[np.lexsort(keys)][query.from_ : need]
    return [
        ResultItem(item=catalog.item_id(p), score=float(final[p]), props=catalog.properties(p))
        for p in order.tolist()
    ]
