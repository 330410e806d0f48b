"""Shamir t-of-n secret sharing of 32-byte secrets over the prime field GF(2^521 - 1).

Why this field: the secrets are X25519 private keys and PRG seeds (256 bits), so the prime must
exceed 2^256; the Mersenne prime 2^521 - 1 is a well-known prime, so no primality claim rests on
us. Shares are (x, y) with x the holder's party id (never 0) and y a 66-byte big-endian integer.
Coefficients come from `secrets`, so t - 1 shares are independent of the secret.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Sequence

from lerna.core.secagg.errors import ProtocolError

PRIME = 2**521 - 1
SHARE_BYTES = 66
SECRET_BYTES = 32


def split(secret: bytes, holders: Sequence[int], threshold: int) -> dict[int, bytes]:
    """Share `secret` among `holders` (party ids >= 1) so any `threshold` of them recover it."""
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"secret must be {SECRET_BYTES} bytes, got {len(secret)}")
    if not 1 <= threshold <= len(holders):
        raise ValueError(f"threshold {threshold} must be in [1, {len(holders)}]")
    if len(set(holders)) != len(holders) or any(h < 1 or h >= PRIME for h in holders):
        raise ValueError("holders must be distinct party ids >= 1")
    coefficients = [int.from_bytes(secret, "big")]
    coefficients += [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    shares: dict[int, bytes] = {}
    for x in holders:
        y = 0
        for c in reversed(coefficients):  # Horner
            y = (y * x + c) % PRIME
        shares[x] = y.to_bytes(SHARE_BYTES, "big")
    return shares


def parse_share(value: bytes) -> int:
    """A share's y as a field element; refuses wrong lengths and values outside the field."""
    if len(value) != SHARE_BYTES:
        raise ProtocolError("share has wrong length")
    y = int.from_bytes(value, "big")
    if y >= PRIME:
        raise ProtocolError("share out of range")
    return y


def combine(shares: Iterable[tuple[int, bytes]], threshold: int) -> bytes:
    """Lagrange interpolation at 0 from the first `threshold` shares.

    Raises ProtocolError when fewer than `threshold` distinct shares are given or the result is not
    a 256-bit secret (a sign of inconsistent shares).
    """
    points: dict[int, int] = {}
    for x, value in shares:
        if x < 1 or x >= PRIME:
            raise ProtocolError("share index out of range")
        points.setdefault(x, parse_share(value))
        if len(points) == threshold:
            break
    if len(points) < threshold:
        raise ProtocolError("not enough shares to reconstruct")
    # Lagrange at 0: secret = sum_i y_i * prod_{j != i} x_j / (x_j - x_i). The products of
    # small party ids are exact integers (cheap); one modular inversion serves all t
    # denominators (Montgomery's batch trick), instead of t inversions in the 521-bit field.
    xs = list(points)
    numerator = math.prod(xs) % PRIME
    denominators = [xi * math.prod(xj - xi for xj in xs if xj != xi) % PRIME for xi in xs]
    inverses = _batch_inverse(denominators)
    secret = numerator * sum(points[x] * inv for x, inv in zip(xs, inverses, strict=True)) % PRIME
    if secret >= 2 ** (8 * SECRET_BYTES):
        raise ProtocolError("shares are inconsistent")
    return secret.to_bytes(SECRET_BYTES, "big")


def _batch_inverse(values: list[int]) -> list[int]:
    """Modular inverses of non-zero field elements with a single exponentiation."""
    prefix = [1]
    for v in values:
        prefix.append(prefix[-1] * v % PRIME)
    inverse = pow(prefix[-1], -1, PRIME)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inverse * prefix[i] % PRIME
        inverse = inverse * values[i] % PRIME
    return out
