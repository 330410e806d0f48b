"""Key derivation and share packing that the client and the server must agree on bit for bit.

Every derived key binds the protocol version, its purpose, the round and the (unordered) pair, so
a key agreed for one round or one purpose cannot be reused for another. Share ciphertexts carry
the round, sender and recipient as AES-GCM associated data *and* inside the plaintext: the
associated data stops a ciphertext being replayed into another round or redirected, and the
recipient checks the plaintext ids as Bonawitz et al. prescribe.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lerna.core.secagg import _crypto
from lerna.core.secagg.errors import ProtocolError
from lerna.core.secagg.shamir import SHARE_BYTES

_VERSION = b"lerna/secagg+/v1"
_PLAINTEXT_BYTES = 8 + 2 * SHARE_BYTES


def _context(purpose: bytes, round_id: str, a: int, b: int) -> bytes:
    lo, hi = sorted((a, b))
    return b"|".join(
        (_VERSION, purpose, round_id.encode(), lo.to_bytes(4, "big"), hi.to_bytes(4, "big"))
    )


def cipher_keys(
    private: bytes, peers: dict[int, bytes], round_id: str, me: int
) -> dict[int, bytes]:
    """The AES-GCM keys `me` shares with each peer (peer id -> its cipher public key)."""
    order = sorted(peers)
    try:
        keys = _crypto.agree_many(
            private, [(peers[j], _context(b"cipher", round_id, me, j)) for j in order]
        )
    except ValueError as exc:
        raise ProtocolError("invalid public key") from exc
    return dict(zip(order, keys, strict=True))


def add_pairwise_masks(
    total: npt.NDArray[np.uint32],
    private: bytes,
    peers: dict[int, bytes],
    round_id: str,
    me: int,
) -> None:
    """Add in place the masks `me` contributes for each pair (peer id -> mask public key):
    +PRG(s) if me < peer else -PRG(s), so the two ends of a pair cancel. One PRG call per pair."""
    order = sorted(peers)
    try:
        seeds = _crypto.agree_many(
            private, [(peers[j], _context(b"mask", round_id, me, j)) for j in order]
        )
    except ValueError as exc:
        raise ProtocolError("invalid public key") from exc
    length = total.shape[0]
    for j, seed in zip(order, seeds, strict=True):
        if me < j:
            total += _crypto.prg_uint32(seed, length)
        else:
            total -= _crypto.prg_uint32(seed, length)


def self_mask(seed: bytes, length: int) -> npt.NDArray[np.uint32]:
    return _crypto.prg_uint32(seed, length)


def share_ad(round_id: str, sender: int, recipient: int) -> bytes:
    return b"|".join(
        (
            _VERSION,
            b"share",
            round_id.encode(),
            sender.to_bytes(4, "big"),
            recipient.to_bytes(4, "big"),
        )
    )


def pack_shares(sender: int, recipient: int, key_share: bytes, mask_share: bytes) -> bytes:
    return sender.to_bytes(4, "big") + recipient.to_bytes(4, "big") + key_share + mask_share


def unpack_shares(plaintext: bytes, sender: int, recipient: int) -> tuple[bytes, bytes]:
    """(key share, mask share); refuses a plaintext whose ids or length do not match."""
    if len(plaintext) != _PLAINTEXT_BYTES:
        raise ProtocolError("share plaintext has wrong length")
    if plaintext[:4] != sender.to_bytes(4, "big") or plaintext[4:8] != recipient.to_bytes(4, "big"):
        raise ProtocolError("share plaintext names the wrong parties")
    return plaintext[8 : 8 + SHARE_BYTES], plaintext[8 + SHARE_BYTES :]
