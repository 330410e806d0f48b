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


def cipher_key(private: bytes, peer_public: bytes, round_id: str, me: int, peer: int) -> bytes:
    """The AES-GCM key two parties share for sending each other Shamir shares."""
    try:
        return _crypto.agree(private, peer_public, _context(b"cipher", round_id, me, peer))
    except ValueError as exc:
        raise ProtocolError("invalid public key") from exc


def pairwise_mask(
    private: bytes, peer_public: bytes, round_id: str, me: int, peer: int, length: int
) -> npt.NDArray[np.uint32]:
    """The mask `me` adds for the pair: +PRG(s) if me < peer else -PRG(s), so pairs cancel."""
    try:
        seed = _crypto.agree(private, peer_public, _context(b"mask", round_id, me, peer))
    except ValueError as exc:
        raise ProtocolError("invalid public key") from exc
    mask = _crypto.prg_uint32(seed, length)
    return mask if me < peer else np.negative(mask)


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
