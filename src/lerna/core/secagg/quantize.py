"""Fixed-point encoding of clipped float vectors modulo 2^32, and decoding of their sum.

Secure aggregation adds vectors in Z_{2^32}, so floats must become integers first. Each value is
clipped to [-bound, bound], scaled by `scale` and stochastically rounded (floor plus a Bernoulli
of the fractional part), which makes the encoding unbiased: E[q] = v * scale. Negative integers
use the two's-complement (centred) representation, so a sum decodes by reading it as int32.

Overflow bound: one device contributes |q| <= bound * scale + 1. The sum of n devices decodes
correctly while n * (bound * scale + 1) <= 2^31 - 1, so `Quantizer.for_devices(bound, n_max)`
picks the largest scale that keeps n_max devices inside the centred range. The resolution is
1 / scale, e.g. about 4.7e-7 for bound = 1 and n_max = 1000. With more devices than n_max the
sum wraps silently, which is why `dequantize_sum` refuses a count above n_max.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lerna.core.secagg.errors import ProtocolError

_HALF_RANGE = 2**31 - 1
FloatArray = npt.NDArray[np.float64]
UIntArray = npt.NDArray[np.uint32]


@dataclass(frozen=True)
class Quantizer:
    """Maps floats in [-bound, bound] to Z_{2^32}; safe for sums of up to `n_max` devices."""

    bound: float
    n_max: int
    scale: float

    @classmethod
    def for_devices(cls, bound: float, n_max: int) -> Quantizer:
        """The finest scale for which a sum of `n_max` encodings cannot overflow."""
        if not (np.isfinite(bound) and bound > 0):
            raise ValueError(f"bound must be a positive finite number, got {bound}")
        if not 1 <= n_max <= _HALF_RANGE // 2:
            raise ValueError(f"n_max must be in [1, {_HALF_RANGE // 2}], got {n_max}")
        scale = (_HALF_RANGE / n_max - 1.0) / bound
        if scale <= 0:
            raise ValueError("n_max too large for 32-bit fixed point")
        return cls(bound=float(bound), n_max=n_max, scale=float(scale))

    def quantize(self, values: npt.ArrayLike, rng: np.random.Generator) -> UIntArray:
        """Clip, scale and stochastically round; NaN or infinite input is refused."""
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 1:
            raise ValueError(f"expected a 1-D vector, got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError("vector contains NaN or infinite values")
        scaled = np.clip(v, -self.bound, self.bound) * self.scale
        low = np.floor(scaled)
        q = low + (rng.random(v.shape[0]) < (scaled - low))
        return q.astype(np.int64).astype(np.uint32)  # two's complement wrap for negatives

    def dequantize_sum(self, total: UIntArray, count: int) -> FloatArray:
        """Decode the mod-2^32 sum of `count` encodings back to floats."""
        if not 1 <= count <= self.n_max:
            raise ProtocolError(f"sum of {count} devices exceeds the quantiser's n_max")
        return np.asarray(total, dtype=np.uint32).view(np.int32).astype(np.float64) / self.scale
