"""Ranking metrics exactly as Microsoft Recommenders defines them (python_evaluation.py).

Over the users present in both the truth and the predictions: precision@k = hits / k;
NDCG@k with binary relevance and 1/ln(1 + rank) discounts, ideal DCG over min(k, relevant);
MAP = mean over users of (sum of precision at each hit's rank) / (number of relevant items),
where the denominator is *all* relevant items, not min(k, relevant): that is their MAP, and
it is lower than the usual MAP@k, so published SAR figures are only comparable with this one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RankingScores:
    ndcg: float
    precision: float
    map: float
    recall: float
    users: int


def ranking_metrics(
    truth: Mapping[str, set[str]], predicted: Mapping[str, Sequence[str]], k: int = 10
) -> RankingScores:
    users = [u for u in truth if u in predicted and truth[u]]
    if not users:
        return RankingScores(0.0, 0.0, 0.0, 0.0, 0)
    ndcg = precision = avg_prec = recall = 0.0
    for u in users:
        relevant = truth[u]
        hits = 0
        dcg = prec_sum = 0.0
        for rank, item in enumerate(predicted[u][:k], start=1):
            if item in relevant:
                hits += 1
                dcg += 1.0 / math.log1p(rank)
                prec_sum += hits / rank
        ideal = sum(1.0 / math.log1p(r) for r in range(1, min(k, len(relevant)) + 1))
        ndcg += dcg / ideal
        precision += hits / k
        avg_prec += prec_sum / len(relevant)
        recall += hits / len(relevant)
    n = len(users)
    return RankingScores(ndcg / n, precision / n, avg_prec / n, recall / n, n)
