"""What a device puts into a secure sum, shared by the SDK (packing) and the FL-API (unpacking).

Secure aggregation reveals only the sum of the devices' vectors, so everything the server
needs from a round travels inside that sum: the clipped model update, the device's example
weight, and the held-out metrics the device measured (so even its accuracy figures are only
ever seen aggregated). Layout, for a model with ``d`` parameters::

    [ update (d values) | w | m_1 .. m_K | c ]

with ``w = min(num_examples, WEIGHT_NORMALISER) / WEIGHT_NORMALISER`` in (0, 1], ``m_i`` the
device's metrics (0 when it has none) and ``c`` 1 when it reported metrics.

Two encodings share that layout:

* **Without DP** (FedAvg): the update is ``w * clip(delta)`` and the server divides the sum by
  the sum of ``w``, an example-weighted mean.
* **With DP** (``dp_active``: noise multiplier above 0 in a secure mode). The accountant
  assumes that adding or removing one device (one user) moves the released sum by at most
  ``S = clip_norm`` in L2, and the noise is calibrated to exactly that. Every slot of the
  vector is released, so every slot must fit in that one budget: the update is
  ``clip(delta)`` to ``S * sqrt(1 - EXTRA_SHARE^2)`` (weight 1 per user, whatever its example
  count: an example-weighted sum would let a heavy user move it by up to ``S`` only after
  scaling everyone else down, which is what made noise drown the old form), and the extra
  slots, whose raw values all lie in [0, 1], are multiplied by ``extra_scale`` so that they
  take at most ``S * EXTRA_SHARE`` of the norm. The whole packed contribution therefore has
  norm at most ``S`` (tested), the same sensitivity the accountant assumes. The server
  divides the update sum by the *expected* cohort (a public, data-independent number; DP-FedAvg's
  fixed denominator, McMahan et al. 2018), never by the noised weight slot (which for a small
  cohort can be near zero) nor by the survivor count (which moves with one device).

Noise lives on the lattice (``to_lattice``): the device quantises its contribution to
Z_{2^32} first and, in SecAgg+ mode, then adds its share of *discrete* Gaussian noise in
quantised units (``lerna.core.dp.discrete``); in two-server mode it adds none and the MPC
service adds all of it, also in quantised units, to the sum. Integer noise on integers is what
the discrete Gaussian's proofs cover and what no floating-point attack can read (Mironov 2012).
The accountant is then given ``accounting_noise_multiplier``, which charges for the rounding
(see ``lerna.core.dp.lattice``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lerna.core.dp import PrivacyConfig, clip_l2, distributed_noise_std
from lerna.core.dp.discrete import discrete_gaussian
from lerna.core.dp.lattice import effective_noise_multiplier
from lerna.core.metrics import METRIC_NAMES
from lerna.core.secagg import Quantizer

WEIGHT_NORMALISER = 1000.0
EXTRA = 2 + len(METRIC_NAMES)
NOISE_TAIL = 6.0  # headroom per device, in standard deviations of one device's noise share
EXTRA_SHARE = 0.25  # under DP: the extra slots' share of the clip norm (they cost ~3% of it)


def vector_length(num_params: int) -> int:
    return num_params + EXTRA


def dp_active(privacy: PrivacyConfig) -> bool:
    """Whether a secure round adds DP noise (mode ``none`` uploads in the clear, un-noised)."""
    return privacy.dp_enabled and privacy.mode != "none"


def update_clip(privacy: PrivacyConfig) -> float:
    """The L2 bound of the update part: all of S without DP, what the extras leave with DP."""
    if not dp_active(privacy):
        return privacy.clip_norm
    return privacy.clip_norm * math.sqrt(1.0 - EXTRA_SHARE**2)


def extra_scale(privacy: PrivacyConfig) -> float:
    """Under DP, the factor on the extra slots: EXTRA values in [0, 1] then weigh at most
    ``S * EXTRA_SHARE``. Without DP the extras travel as they are."""
    if not dp_active(privacy):
        return 1.0
    return privacy.clip_norm * EXTRA_SHARE / math.sqrt(EXTRA)


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
    """Per-device range the fixed point reserves: the contribution (every coordinate within S)
    plus NOISE_TAIL noise standard deviations. The noise is added after quantising and is not
    clipped, so the headroom is what keeps the *sum* inside int32: n devices reserve
    n * NOISE_TAIL * std while their summed noise has standard deviation sqrt(n) * std, a margin
    of NOISE_TAIL * sqrt(n) of its standard deviations (about 19 for t = 10).

    Without DP the extra slots travel unscaled in [0, 1], so the range is at least 1; under DP
    every slot is within S (``contribution``), and a range of S instead of 1 keeps a small S
    from coarsening the fixed point, whose rounding the accountant pays for (S * scale +
    sqrt(d), ``accounting_noise_multiplier``)."""
    signal = privacy.clip_norm if dp_active(privacy) else max(privacy.clip_norm, 1.0)
    return signal + NOISE_TAIL * noise_std(privacy)


def quantizer(privacy: PrivacyConfig, parties: int) -> Quantizer:
    """The fixed point every device of a round and the server agree on (``parties``: the most
    devices whose encodings may be added, e.g. the cohort size)."""
    return Quantizer.for_devices(_bound(privacy), parties + central_noise_headroom(privacy))


def contribution(
    delta: npt.NDArray[np.float64],
    num_examples: int,
    metrics: dict[str, float],
    privacy: PrivacyConfig,
) -> npt.NDArray[np.float64]:
    """The device's vector before noise: what one user adds to the sum (norm <= S under DP)."""
    clipped, _ = clip_l2(delta, update_clip(privacy))
    weight = min(float(num_examples), WEIGHT_NORMALISER) / WEIGHT_NORMALISER
    extra = np.zeros(EXTRA)
    extra[0] = weight
    if metrics:
        values = [metrics.get(name, 0.0) for name in METRIC_NAMES]
        extra[1 : 1 + len(METRIC_NAMES)] = np.clip(values, 0.0, 1.0)  # ranking metrics: [0, 1]
        extra[-1] = 1.0
    if dp_active(privacy):
        return np.concatenate([clipped, extra_scale(privacy) * extra])
    return np.concatenate([weight * clipped, extra])


def lattice_noise_std(privacy: PrivacyConfig, q: Quantizer) -> float:
    """One device's noise share in quantised units: ``noise_std`` times the round's scale."""
    return noise_std(privacy) * q.scale


def to_lattice(
    vector: npt.NDArray[np.float64],
    privacy: PrivacyConfig,
    parties: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.uint32]:
    """What a device adds into the secure sum: its vector quantised to Z_{2^32} with the round's
    fixed point, plus (SecAgg+ with DP) its N_Z(0, (noise_std * scale)^2) share, mod 2^32.

    Quantising first and adding integer noise after is the distributed discrete Gaussian
    mechanism of Kairouz, Liu, Steinke 2021; ``rng`` should be ``lerna.core.dp.discrete.
    noise_rng()`` outside tests."""
    q = quantizer(privacy, parties)
    encoded = q.quantize(vector, rng)
    std = lattice_noise_std(privacy, q)
    if std <= 0:
        return encoded
    noise = discrete_gaussian(std, encoded.shape[0], rng)
    return ((encoded.astype(np.int64) + noise) & 0xFFFFFFFF).astype(np.uint32)


def accounting_noise_multiplier(privacy: PrivacyConfig, num_params: int, parties: int) -> float:
    """The noise multiplier the accountant should use for a round of this task: z, discounted
    for the lattice (``lerna.core.dp.lattice.effective_noise_multiplier``).

    ``parties`` is the most devices a round's fixed point is sized for (the cohort size): a
    larger cohort means a coarser scale and a smaller multiplier, so passing the largest
    cohort a round can have is the conservative choice. SecAgg+ noise is split over the
    threshold t; two-server noise is one central draw."""
    if not dp_active(privacy):
        raise ValueError("no DP noise in this privacy configuration: nothing to account")
    q = quantizer(privacy, parties)
    sharing = privacy.threshold if privacy.mode == "secagg+" else 1
    return effective_noise_multiplier(
        privacy.noise_multiplier, privacy.clip_norm, q.scale, vector_length(num_params), sharing
    )


@dataclass(frozen=True)
class RoundSum:
    """A round's unmasked (and noised) sum, decoded. ``total`` is the raw sum, kept so that a
    caller that knows the round's privacy can decode it again (``unpack(..., privacy=...)``)."""

    mean_delta: npt.NDArray[np.float64]
    weight: float
    num_examples: int
    metrics: dict[str, float]  # sums over reporting devices
    metric_reports: int
    total: npt.NDArray[np.float64]


def unpack(
    total: npt.NDArray[np.float64],
    num_params: int,
    privacy: PrivacyConfig | None = None,
    expected_cohort: float | None = None,
) -> RoundSum:
    """Decode a round's sum. With ``privacy`` under DP, ``expected_cohort`` is required: the
    update sum is divided by it (see the module docstring) and the extras are rescaled."""
    total = np.asarray(total, dtype=np.float64)
    update, extra = total[:num_params], total[num_params:]
    private = privacy is not None and dp_active(privacy)
    if private:
        assert privacy is not None
        if expected_cohort is None or not expected_cohort > 0:
            raise ValueError("a DP round's sum needs the expected cohort (> 0) to divide by")
        extra = extra / extra_scale(privacy)
    weight = float(extra[0])
    reports = max(0, round(float(extra[-1])))
    if private:
        assert expected_cohort is not None
        mean = update / expected_cohort
    else:
        mean = update / weight if weight > 1e-9 else np.zeros(num_params)
    metrics = {
        name: float(v)
        for name, v in zip(METRIC_NAMES, extra[1 : 1 + len(METRIC_NAMES)], strict=True)
    }
    examples = max(0, round(weight * WEIGHT_NORMALISER))
    return RoundSum(mean, weight, examples, metrics, reports, total)
