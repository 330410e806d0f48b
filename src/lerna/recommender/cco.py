"""Correlated cross-occurrence training, as the Universal Recommender defines it.

Per indicator: a binary user-by-item matrix, deduplicated, capped to the newest
``maxEventsPerEventType`` events per user and a seeded sample of ``maxEventsPerItem`` users per
item (the caps bound the quadratic cost of popular users and items, as in Mahout). Then
``A'A`` (primary by primary, diagonal removed) and ``A'B`` (primary by secondary), each non-zero
cell scored by LLR, and the top ``maxCorrelatorsPerItem`` per primary item above ``minLLR`` kept.
Everything is whole-array scipy/numpy work; the only Python loop is over indicators.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lerna.recommender.config import AlgorithmConfig
from lerna.recommender.llr import llr_of_cooccurrence
from lerna.recommender.model import CCOModel, Correlators, Ranking
from lerna.recommender.rankings import compute_rankings
from lerna.recommender.scoring import popularity_prior, shape_weights


@dataclass(frozen=True)
class EventTable:
    """Indicator events as parallel arrays; ``indicator`` already resolved from aliases."""

    users: NDArray[np.str_]
    items: NDArray[np.str_]
    indicator: NDArray[np.str_]
    times: NDArray[np.float64]

    @classmethod
    def from_rows(cls, rows: list[tuple[str, str, str, float]]) -> EventTable:
        """Rows of ``(user, item, indicator, epoch seconds)``."""
        if not rows:
            empty = np.asarray([], dtype=np.str_)
            return cls(empty, empty, empty, np.asarray([], dtype=np.float64))
        users, items, names, times = zip(*rows, strict=True)
        return cls(
            np.asarray(users, dtype=np.str_),
            np.asarray(items, dtype=np.str_),
            np.asarray(names, dtype=np.str_),
            np.asarray(times, dtype=np.float64),
        )


def _rank_within_groups(groups: NDArray[np.int64], order: NDArray[np.intp]) -> NDArray[np.int64]:
    """Position of each element inside its group, for elements visited in ``order``."""
    g = groups[order]
    starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    lengths = np.diff(np.r_[starts, g.size])
    ranks_sorted = np.arange(g.size) - np.repeat(starts, lengths)
    ranks = np.empty(g.size, dtype=np.int64)
    ranks[order] = ranks_sorted
    return ranks


def _binary_matrix(
    users: NDArray[np.int64],
    items: NDArray[np.int64],
    times: NDArray[np.float64],
    shape: tuple[int, int],
    per_user: int,
    per_item: int,
    rng: np.random.Generator,
) -> sp.csr_matrix:
    """Deduplicated, downsampled 0/1 matrix: newest events per user, random users per item."""
    if users.size == 0:
        return sp.csr_matrix(shape, dtype=np.float64)
    # newest first, then keep the first occurrence of each (user, item) pair
    order = np.lexsort((-times, items, users))
    u, i, t = users[order], items[order], times[order]
    first = np.r_[True, (u[1:] != u[:-1]) | (i[1:] != i[:-1])]
    u, i, t = u[first], i[first], t[first]
    by_user_newest = np.lexsort((-t, u))
    keep = _rank_within_groups(u, by_user_newest) < per_user
    u, i = u[keep], i[keep]
    by_item_random = np.lexsort((rng.random(i.size), i))
    keep = _rank_within_groups(i, by_item_random) < per_item
    u, i = u[keep], i[keep]
    data = np.ones(u.size, dtype=np.float64)
    return sp.csr_matrix((data, (u, i)), shape=shape)


def _top_k_sorting(m: sp.csr_matrix, k: int, min_llr: float) -> sp.csr_matrix:
    """Top ``k`` per row by one lexicographic sort; for sparse matrices (the reference path)."""
    coo = m.tocoo()
    keep = coo.data > min_llr
    row, col, val = coo.row[keep].astype(np.int64), coo.col[keep], coo.data[keep]
    order = np.lexsort((col, -val, row))  # strongest first, ties by column for determinism
    keep = _rank_within_groups(row, order) < k
    return sp.csr_matrix((val[keep], (row[keep], col[keep])), shape=m.shape)


def _top_k_dense_blocks(m: sp.csr_matrix, k: int, min_llr: float) -> sp.csr_matrix:
    """Same answer as ``_top_k_sorting``, by a k-th-value threshold over dense row blocks.

    Co-occurrence of rating data is dense (most item pairs share a user), where sorting every
    cell cost seconds; a partition per row finds the k-th largest value, cells above it stay,
    and cells equal to it are taken in column order until the row holds ``k``.
    """
    n_rows, n_cols = m.shape
    step = max(1, _DENSE_BLOCK_CELLS // max(n_cols, 1))
    parts: list[sp.csr_matrix] = []
    for lo in range(0, n_rows, step):
        block = m[lo : lo + step].toarray()
        block[block <= min_llr] = 0.0
        if n_cols > k:
            kth = -np.partition(-block, k - 1, axis=1)[:, k - 1 : k]
            above = block > kth
            ties = (block == kth) & (block > 0)
            room = k - above.sum(axis=1, keepdims=True)
            block[~(above | (ties & (np.cumsum(ties, axis=1) <= room)))] = 0.0
        parts.append(sp.csr_matrix(block))
    return sp.csr_matrix(sp.vstack(parts, format="csr")) if parts else sp.csr_matrix(m.shape)


_DENSE_BLOCK_CELLS = 2_000_000
_DENSE_ENOUGH = 0.02


def top_k_per_row(m: sp.csr_matrix, k: int, min_llr: float) -> sp.csr_matrix:
    """The ``k`` largest values above ``min_llr`` in each row; ties go to the lower column."""
    cells = m.shape[0] * m.shape[1]
    if cells and m.nnz >= _DENSE_ENOUGH * cells:
        return _top_k_dense_blocks(m, k, min_llr)
    return _top_k_sorting(m, k, min_llr)


def cross_occurrence_llr(
    a: sp.csr_matrix, b: sp.csr_matrix, same: bool, k: int, min_llr: float
) -> sp.csr_matrix:
    """LLR-weighted ``A'B``, the top ``k`` per row of A's items; ``same`` drops self-pairs."""
    cooc = sp.csr_matrix(a.T @ b)
    if same:
        cooc = sp.csr_matrix(cooc - sp.diags(cooc.diagonal()))
        cooc.eliminate_zeros()
    rows = np.repeat(np.arange(cooc.shape[0], dtype=np.int64), np.diff(cooc.indptr))
    a_counts = np.asarray(a.sum(axis=0), dtype=np.float64).ravel()
    b_counts = np.asarray(b.sum(axis=0), dtype=np.float64).ravel()
    llr = llr_of_cooccurrence(
        cooc.data.astype(np.float64), rows, cooc.indices.astype(np.int64), a_counts, b_counts,
        float(a.shape[0]),
    )  # fmt: skip
    scored = sp.csr_matrix((llr, cooc.indices, cooc.indptr), shape=cooc.shape)
    return top_k_per_row(scored, k, min_llr)


def train_cco(
    config: AlgorithmConfig,
    events: EventTable,
    now: float | None = None,
    checkpoint: Callable[[], None] = lambda: None,
) -> CCOModel:
    """Train a model from indicator events.

    ``checkpoint`` is called between stages; a cancelled job raises from it, so cancelling never
    leaves anything half-installed (nothing is installed until this function returns).
    """
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    primary = config.indicators[0].name
    user_vocab, user_idx = np.unique(events.users, return_inverse=True)
    n_users = max(int(user_vocab.size), 1)
    is_primary = events.indicator == primary
    items, p_idx = np.unique(events.items[is_primary], return_inverse=True)
    a = _binary_matrix(
        user_idx[is_primary].astype(np.int64),
        p_idx.astype(np.int64),
        events.times[is_primary],
        (n_users, items.size),
        config.max_events_per_event_type,
        config.max_events_per_item,
        rng,
    )
    checkpoint()
    correlators: list[Correlators] = []
    for ind in config.indicators:
        mask = events.indicator == ind.name
        if ind.name == primary:
            vocab, b = items, a
        else:
            vocab, v_idx = np.unique(events.items[mask], return_inverse=True)
            b = _binary_matrix(
                user_idx[mask].astype(np.int64),
                v_idx.astype(np.int64),
                events.times[mask],
                (n_users, vocab.size),
                config.max_events_per_event_type,
                config.max_events_per_item,
                rng,
            )
        k = ind.max_correlators_per_item or config.max_correlators_per_item
        min_llr = ind.min_llr if ind.min_llr is not None else config.min_llr
        weights = cross_occurrence_llr(a, b, ind.name == primary, k, min_llr)
        shaped = shape_weights(weights.T.tocsr(), config.scoring, ind.weight)
        correlators.append(Correlators(ind.name, vocab, shaped))
        checkpoint()
    if now is not None:
        reference = now
    else:
        reference = float(events.times.max()) if events.times.size else time.time()
    rankings: list[Ranking] = compute_rankings(config, events, items, reference, rng)
    checkpoint()
    stats = {
        "users": float(user_vocab.size),
        "items": float(items.size),
        "events": float(events.users.size),
        "seconds": time.perf_counter() - started,
    }
    prior = None
    if config.scoring.popularity_weight > 0:
        counts = np.bincount(p_idx, minlength=items.size).astype(np.float64)
        prior = popularity_prior(counts, config.scoring)
    return CCOModel(items, correlators, rankings, time.time(), stats, prior)
