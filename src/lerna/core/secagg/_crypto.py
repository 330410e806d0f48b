"""Every call into `cryptography` lives here, behind names that say what they are for.

Keeping the primitives in one private module means a reviewer audits one page, and swapping a
primitive (say AES-CTR for ChaCha20) touches one file. Protocol code never sees a key object,
only 32-byte strings.

- X25519 for key agreement, HKDF-SHA256 to turn the shared point into a key whose `info` binds the
  purpose and the round, so a key from one round or purpose is useless in another.
- AES-256-GCM with a random 96-bit nonce; the caller passes associated data binding round id,
  stage, sender and recipient, so a ciphertext cannot be replayed elsewhere.
- AES-256-CTR keystream as the PRG that expands a 32-byte seed into a uint32 vector: one call per
  seed however long the vector (AES-NI makes this a memory-bandwidth operation).
"""

from __future__ import annotations

import secrets

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
_ZERO_IV = bytes(16)


class DecryptionFailed(Exception):
    """Raised when an AEAD ciphertext does not authenticate (wrong key, tampered, replayed)."""


def random_bytes(n: int = KEY_BYTES) -> bytes:
    """Fresh secret bytes from the OS CSPRNG."""
    return secrets.token_bytes(n)


def x25519_keypair() -> tuple[bytes, bytes]:
    """A new X25519 key pair as raw (private, public) 32-byte strings."""
    private = X25519PrivateKey.generate()
    return (
        private.private_bytes_raw(),
        private.public_key().public_bytes_raw(),
    )


def x25519_public(private_raw: bytes) -> bytes:
    """The public key that belongs to a raw private key (used after Shamir reconstruction)."""
    return X25519PrivateKey.from_private_bytes(private_raw).public_key().public_bytes_raw()


def agree(private_raw: bytes, peer_public_raw: bytes, info: bytes) -> bytes:
    """X25519 then HKDF-SHA256: a 32-byte key both peers derive, bound to `info`.

    Raises ValueError for a malformed public key or a low-order point (all-zero shared secret).
    """
    return agree_many(private_raw, [(peer_public_raw, info)])[0]


def agree_many(private_raw: bytes, peers: list[tuple[bytes, bytes]]) -> list[bytes]:
    """`agree` against many (peer public key, info) pairs, loading the private key once."""
    private = X25519PrivateKey.from_private_bytes(private_raw)
    return [
        hkdf(private.exchange(X25519PublicKey.from_public_bytes(public)), info)
        for public, info in peers
    ]


def hkdf(material: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    """HKDF-SHA256 without salt: inputs here are already uniform secrets."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(material)


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """AES-256-GCM encrypt; returns nonce || ciphertext || tag."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def open_sealed(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    """Inverse of `seal`; any failure is one DecryptionFailed (no oracle on why)."""
    if len(sealed) < NONCE_BYTES + 16:
        raise DecryptionFailed
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data)
    except InvalidTag as exc:
        raise DecryptionFailed from exc


def prg_uint32(seed: bytes, length: int) -> npt.NDArray[np.uint32]:
    """Expand a 32-byte seed into `length` uniform uint32 values (AES-256-CTR keystream).

    A fresh key per seed makes the all-zero IV safe: each (key, IV) pair is used once.
    """
    if len(seed) != KEY_BYTES:
        raise ValueError(f"PRG seed must be {KEY_BYTES} bytes, got {len(seed)}")
    encryptor = Cipher(algorithms.AES(seed), modes.CTR(_ZERO_IV)).encryptor()
    stream = encryptor.update(bytes(4 * length)) + encryptor.finalize()
    return np.frombuffer(stream, dtype="<u4").astype(np.uint32, copy=False)


class Keystream:
    """PRG(seed) for many seeds of one length, each written over the same buffer."""

    def __init__(self, length: int) -> None:
        self.length = length
        self._zeros = bytes(4 * length)
        self._out = bytearray(4 * length + 15)  # update_into wants block-size slack

    def expand(self, seed: bytes) -> npt.NDArray[np.uint32]:
        """The keystream of `seed` as a uint32 view of the shared buffer (valid until the next
        call): identical to `prg_uint32(seed, length)`."""
        if len(seed) != KEY_BYTES:
            raise ValueError(f"PRG seed must be {KEY_BYTES} bytes, got {len(seed)}")
        encryptor = Cipher(algorithms.AES(seed), modes.CTR(_ZERO_IV)).encryptor()
        encryptor.update_into(self._zeros, self._out)
        encryptor.finalize()
        return np.frombuffer(self._out, dtype="<u4", count=self.length)
