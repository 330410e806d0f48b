"""Two-server masking: the MPC service's seeds and mask sums, and the device's masking step.

The MPC service holds one master key and derives each device's per-round seed from it (HKDF over
round id and device id), so it stores no per-device secrets and can recompute any mask. A device
adds PRG(seed) to its quantised update; the FL-API adds the accepted masked uploads and the MPC
service's negated mask sum for exactly that set, which cancels the masks and leaves the sum.
Privacy rests on the two services not colluding, and on the MPC service answering at most one set
per round, of at least `t` devices (enforced by the service, see `lerna.mpc`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from lerna.core.secagg import _crypto
from lerna.core.secagg.messages import as_uint32

_INFO = b"lerna/two-server/v1|seed|"


def device_seed(master_key: bytes, round_id: str, device_id: str) -> bytes:
    """The 32-byte seed of one device in one round; length-prefixed fields avoid ambiguity."""
    if len(master_key) < 32:
        raise ValueError("master key must be at least 32 bytes")
    r, dev = round_id.encode(), device_id.encode()
    info = _INFO + len(r).to_bytes(2, "big") + r + len(dev).to_bytes(2, "big") + dev
    return _crypto.hkdf(master_key, info)


def mask_update(seed: bytes, quantised: npt.ArrayLike, length: int) -> npt.NDArray[np.uint32]:
    """Device side: the quantised update plus its PRG vector mask, modulo 2^32."""
    return as_uint32(quantised, length) + _crypto.prg_uint32(seed, length)


def negated_mask_sum(seeds: Iterable[bytes], length: int) -> npt.NDArray[np.uint32]:
    """MPC side: -(sum of PRG(seed)) modulo 2^32; one PRG call per device."""
    total = np.zeros(length, dtype=np.uint32)
    for seed in seeds:
        total += _crypto.prg_uint32(seed, length)
    return np.negative(total)
