"""How a round's uploads become one update. This is the seam secure aggregation replaces:
the secure version adds masked vectors modulo 2^32 and unmasks only the sum, but keeps the
same three operations (start empty, add one upload, take the mean)."""

from __future__ import annotations

import numpy as np

from lerna.core.protocol import UploadMeta
from lerna.server.models import RoundAggregate


def merge_sums(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in a.keys() | b.keys()}


class PlainAggregator:
    """FedAvg: a running sum of updates weighted by each device's example count."""

    def empty(self, num_params: int) -> bytes:
        return np.zeros(num_params, dtype=np.float64).tobytes()

    def add(self, agg: RoundAggregate, update: np.ndarray, meta: UploadMeta) -> None:
        total = np.frombuffer(agg.weighted_sum, dtype=np.float64).copy()
        if total.shape != update.shape:
            raise ValueError("update does not match the round's parameter count")
        total += meta.num_examples * update
        agg.weighted_sum = total.tobytes()
        agg.weight_total += meta.num_examples
        agg.num_examples += meta.num_examples
        if meta.metrics:
            agg.metrics_sum = merge_sums(agg.metrics_sum, meta.metrics)
            agg.metrics_count += 1

    def mean(self, agg: RoundAggregate) -> np.ndarray:
        total = np.frombuffer(agg.weighted_sum, dtype=np.float64)
        return total / agg.weight_total if agg.weight_total > 0 else np.zeros_like(total)
