"""Ranking metrics, shared by the SDK (on-device evaluation) and the evaluation harness.

Both sides must compute the same numbers, so the definitions live here once. ``map_at_k``
follows Microsoft Recommenders: the sum of precisions at the hits within the top k, divided by
the number of relevant items (not by min(k, relevant)), which is why its MAP looks small.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

METRIC_NAMES = ("ndcg@10", "precision@10", "recall@10", "map@10")


def _hits(ranked: Sequence[int], relevant: set[int], k: int) -> np.ndarray:
    return np.fromiter((1.0 if item in relevant else 0.0 for item in ranked[:k]), dtype=np.float64)


def ndcg_at_k(ranked: Sequence[int], relevant: Iterable[int], k: int = 10) -> float:
    """Binary-relevance NDCG: the ideal ranking puts every relevant item first."""
    rel = set(relevant)
    if not rel:
        return 0.0
    hits = _hits(ranked, rel, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float(np.sum(hits * discounts[: hits.size]))
    idcg = float(np.sum(discounts[: min(len(rel), k)]))
    return dcg / idcg


def precision_at_k(ranked: Sequence[int], relevant: Iterable[int], k: int = 10) -> float:
    rel = set(relevant)
    return float(_hits(ranked, rel, k).sum()) / k if rel else 0.0


def recall_at_k(ranked: Sequence[int], relevant: Iterable[int], k: int = 10) -> float:
    rel = set(relevant)
    return float(_hits(ranked, rel, k).sum()) / len(rel) if rel else 0.0


def map_at_k(ranked: Sequence[int], relevant: Iterable[int], k: int = 10) -> float:
    rel = set(relevant)
    if not rel:
        return 0.0
    hits = _hits(ranked, rel, k)
    precisions = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float(np.sum(precisions * hits)) / len(rel)


def ranking_metrics(
    ranked: Sequence[int], relevant: Iterable[int], k: int = 10
) -> dict[str, float]:
    """All metrics of one user's ranking, keyed as they appear in reports."""
    rel = set(relevant)
    return {
        f"ndcg@{k}": ndcg_at_k(ranked, rel, k),
        f"precision@{k}": precision_at_k(ranked, rel, k),
        f"recall@{k}": recall_at_k(ranked, rel, k),
        f"map@{k}": map_at_k(ranked, rel, k),
    }


def top_k(scores: np.ndarray, k: int, exclude: Iterable[int] = ()) -> list[int]:
    """Indices of the k highest scores, skipping ``exclude``; ties broken by index for determinism."""
    s = np.asarray(scores, dtype=np.float64).copy()
    excluded = np.fromiter(exclude, dtype=np.int64)
    if excluded.size:
        s[excluded] = -np.inf
    k = min(k, int(np.isfinite(s).sum()))
    if k <= 0:
        return []
    part = np.argpartition(-s, k - 1)[:k]
    order = np.lexsort((part, -s[part]))
    return [int(i) for i in part[order]]
