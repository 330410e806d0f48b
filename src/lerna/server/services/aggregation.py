"""How a round's uploads become one update. This is the seam secure aggregation replaces:
the secure version adds masked vectors modulo 2^32 and unmasks only the sum, but keeps the
same three operations (start empty, add one upload, take the mean). ``private_mean`` is the
DP-FedAvg reading of a secure sum."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lerna.core.dp import PrivacyConfig
from lerna.core.protocol import UploadMeta
from lerna.core.secure_update import RoundSum, dp_active, unpack
from lerna.server.models import Device, MLTask, Round, RoundAggregate


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


def expected_cohort(session: Session, task: MLTask, rnd: Round) -> int:
    """The accountant's q times the enrolled population: the round's cohort size, or the whole
    population when that is smaller. Public and independent of who took part, so dividing by
    it releases nothing beyond the noised sum."""
    population = session.scalar(select(func.count(Device.id)).where(Device.app_id == task.app_id))
    return max(1, min(rnd.cohort_size, population or 0))


def private_mean(session: Session, task: MLTask, rnd: Round, result: RoundSum) -> RoundSum:
    """A secure round's sum read as DP-FedAvg when the round ran with noise, else unchanged.

    Uses the privacy the round opened with (a task edited mid-round changes the next round)."""
    if not rnd.privacy:
        return result
    privacy = PrivacyConfig.model_validate(rnd.privacy)
    if not dp_active(privacy):
        return result
    num_params = result.mean_delta.shape[0]
    return unpack(result.total, num_params, privacy, expected_cohort(session, task, rnd))
