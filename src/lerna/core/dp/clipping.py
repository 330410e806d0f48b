"""Per-device L2 clipping: it bounds one device's influence on the sum (the DP sensitivity)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def clip_l2(vector: npt.ArrayLike, clip_norm: float) -> tuple[npt.NDArray[np.float64], float]:
    """The vector scaled down to L2 norm at most `clip_norm`, and its norm before clipping.

    The pre-clip norm is returned because the fraction of clipped devices is the signal for tuning
    S, and it is aggregate-safe only if the caller reports it through secure aggregation or not
    at all.
    """
    if not (np.isfinite(clip_norm) and clip_norm > 0):
        raise ValueError(f"clip_norm must be a positive finite number, got {clip_norm}")
    v = np.asarray(vector, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"expected a 1-D vector, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("vector contains NaN or infinite values")
    norm = float(np.linalg.norm(v))
    if norm <= clip_norm:
        return v.copy(), norm
    return v * (clip_norm / norm), norm
