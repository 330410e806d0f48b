"""Two-server masking: the MPC service's seeds and mask sums, and the device's masking step.

The MPC service holds one master key and derives each device's per-round seed from it (HKDF over
round id and device id), so it stores no per-device secrets and can recompute any mask. A device
adds PRG(seed) to its quantised update; the FL-API adds the accepted masked uploads and the MPC
service's negated mask sum for exactly that set, which cancels the masks and leaves the sum.
Privacy rests on the two services not colluding, and on the MPC service answering at most one set
per round, of at least `t` devices (enforced by the service, see `lerna.mpc`).

Why `add_masks`: expanding one mask per accepted device when the round closes puts n PRG
expansions on the round's critical path. The MPC service instead adds each device's mask into
a per-round running sum once the FL-API has accepted its upload (the device passes on the
FL-API's receipt), so at close only a few masks are left to add (see `lerna.mpc.running_sums`).

Masks are expanded with `_crypto.Keystream`: the same AES-256-CTR stream as
`_crypto.prg_uint32` (a test checks they agree), written into one reused buffer.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from lerna.core.secagg import _crypto
from lerna.core.secagg.messages import as_uint32

_INFO = b"lerna/two-server/v1|seed|"


def _field(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(2, "big") + raw


def _hkdf_sha256_32(key: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) without salt, 32 bytes out: byte for byte `_crypto.hkdf`, written
    as its two HMACs because the MPC service derives one seed per dropout on the round's
    critical path, and building an HKDF object costs more than the HMACs (a test compares)."""
    if len(key) < 32:
        raise ValueError("master key must be at least 32 bytes")
    prk = hmac.digest(bytes(32), key, hashlib.sha256)
    return hmac.digest(prk, info + b"\x01", hashlib.sha256)


def device_seed(master_key: bytes, round_id: str, device_id: str) -> bytes:
    """The 32-byte seed of one device in one round; length-prefixed fields avoid ambiguity."""
    return _hkdf_sha256_32(master_key, _INFO + _field(round_id) + _field(device_id))


def mask_update(seed: bytes, quantised: npt.ArrayLike, length: int) -> npt.NDArray[np.uint32]:
    """Device side: the quantised update plus its PRG vector mask, modulo 2^32."""
    return as_uint32(quantised, length) + _crypto.prg_uint32(seed, length)


def add_masks(
    total: npt.NDArray[np.uint32], seeds: Iterable[bytes], subtract: bool = False
) -> npt.NDArray[np.uint32]:
    """total +/-= PRG(seed) for each seed, in place, modulo 2^32; returns `total`.

    One keystream buffer is reused across seeds, which keeps the cost near AES-CTR's own speed
    (a fresh 4d-byte buffer per seed costs more in page faults than the cipher does)."""
    if total.dtype != np.uint32 or total.ndim != 1:
        raise ValueError("total must be a 1-D uint32 vector")
    stream = _crypto.Keystream(total.shape[0])
    op = np.subtract if subtract else np.add
    for seed in seeds:
        op(total, stream.expand(seed), out=total)
    return total


def mask_sum(seeds: Iterable[bytes], length: int) -> npt.NDArray[np.uint32]:
    """sum of PRG(seed) modulo 2^32; one PRG call per seed."""
    return add_masks(np.zeros(length, dtype=np.uint32), seeds)


def negated_mask_sum(seeds: Iterable[bytes], length: int) -> npt.NDArray[np.uint32]:
    """MPC side: -(sum of PRG(seed)) modulo 2^32; one PRG call per device."""
    return np.negative(mask_sum(seeds, length))
