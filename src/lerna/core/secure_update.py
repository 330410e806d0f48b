"""What a device puts into a secure sum, shared by the SDK (packing) and the FL-API (unpacking).

Secure aggregation reveals only the sum of the devices' vectors, so everything the server
needs from a round travels inside that sum: the clipped, example-weighted model update, the
weight itself, and the held-out metrics the device measured (so even its accuracy figures are
only ever seen aggregated). Layout, for a model with ``d`` parameters::

    [ w * clip(delta) (d values) | w | m_1 .. m_K | c ]

with ``w = min(num_examples, WEIGHT_NORMALISER) / WEIGHT_NORMALISER`` in (0, 1], ``m_i`` the
device's metrics (0 when it has none) and ``c`` 1 when it reported metrics. Since ``w <= 1``,
one device changes the sum by at most ``clip_norm`` in the update part, which is what the DP
accountant assumes. In SecAgg+ mode each device adds its share of Gaussian noise to the whole
vector; in two-server mode the MPC service adds all of it to the sum. Then the device quantises
the vector to Z_{2^32}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lerna.core.dp import PrivacyConfig, clip_l2, distributed_noise_std
from lerna.core.metrics import METRIC_NAMES
from lerna.core.secagg import Quantizer

WEIGHT_NORMALISER = 1000.0
EXTRA = 2 + len(METRIC_NAMES)
NOISE_TAIL = 6.0  # quantiser range covers this many standard deviations of one device's noise


def vector_length(num_params: int) -> int:
    return num_params + EXTRA


def noise_std(privacy: PrivacyConfig) -> float:
    """Each device's noise share, calibrated so that any ``threshold`` survivors carry z * S.

    Zero in two-server mode: there the MPC service adds the whole noise to the sum centrally,
    and noise added by devices as well would only cost accuracy."""
    if not privacy.dp_enabled or privacy.mode == "two-server":
        return 0.0
    return distributed_noise_std(privacy.clip_norm, privacy.noise_multiplier, privacy.threshold)


def central_noise_headroom(privacy: PrivacyConfig) -> int:
    """Two-server mode: how many devices' worth of range the MPC's central noise may need.

    The central draw has standard deviation z * S per coordinate, as much as z devices at
    full range, so NOISE_TAIL * z extra "devices" keep the noised sum inside int32."""
    if privacy.mode != "two-server" or not privacy.dp_enabled:
        return 0
    return math.ceil(NOISE_TAIL * privacy.noise_multiplier * privacy.clip_norm / _bound(privacy))


def _bound(privacy: PrivacyConfig) -> float:
    return max(privacy.clip_norm, 1.0) + NOISE_TAIL * noise_std(privacy)


def quantizer(privacy: PrivacyConfig, parties: int) -> Quantizer:
    """The fixed point every device of a round and the server agree on (``parties``: the most
    devices whose encodings may be added, e.g. the cohort size)."""
    return Quantizer.for_devices(_bound(privacy), parties + central_noise_headroom(privacy))


def pack(
    delta: npt.NDArray[np.float64],
    num_examples: int,
    metrics: dict[str, float],
    privacy: PrivacyConfig,
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    """The device's float vector before quantisation: clipped, weighted, with its noise share."""
    clipped, _ = clip_l2(delta, privacy.clip_norm)
    weight = min(float(num_examples), WEIGHT_NORMALISER) / WEIGHT_NORMALISER
    extra = np.zeros(EXTRA)
    extra[0] = weight
    if metrics:
        extra[1 : 1 + len(METRIC_NAMES)] = [metrics.get(name, 0.0) for name in METRIC_NAMES]
        extra[-1] = 1.0
    vec = np.concatenate([weight * clipped, extra])
    std = noise_std(privacy)
    if std > 0:
        vec += rng.normal(0.0, std, size=vec.shape[0])
    return vec


@dataclass(frozen=True)
class RoundSum:
    """A round's unmasked (and noised) sum, decoded."""

    mean_delta: npt.NDArray[np.float64]
    weight: float
    num_examples: int
    metrics: dict[str, float]  # sums over reporting devices
    metric_reports: int


def unpack(total: npt.NDArray[np.float64], num_params: int) -> RoundSum:
    update, extra = total[:num_params], total[num_params:]
    weight = float(extra[0])
    reports = max(0, round(float(extra[-1])))
    mean = update / weight if weight > 1e-9 else np.zeros(num_params)
    metrics = {
        name: float(v)
        for name, v in zip(METRIC_NAMES, extra[1 : 1 + len(METRIC_NAMES)], strict=True)
    }
    return RoundSum(mean, weight, max(0, round(weight * WEIGHT_NORMALISER)), metrics, reports)
