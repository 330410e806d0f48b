"""Short-lived device tickets: the FL-API vouches for a device, the MPC gateway checks it.

Devices hold a credential only the FL-API can check, so the FL-API issues a ticket naming the
device, the round and an expiry, signed with HMAC-SHA256 under a key it shares with the MPC
service (a key separate from the FL-API's own service token). Format, URL-safe and
self-describing: `v1.<base64url(json claims)>.<base64url(mac)>`. Verification recomputes the MAC
and compares in constant time before parsing anything.

A ticket may also carry the round's `vector_length` (two-server mode): the MPC service fixes a
round's length from the first ticket it sees, so it can keep the round's running sum of masks.
Tickets without it are the older form and still verify. A receipt (`a1.` prefix, same claims, no
length) is the FL-API's word that it accepted the device's upload; the device passes it to the
MPC gateway, which adds that device's mask into the running sum before the round closes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lerna.core.secagg.errors import ProtocolError
from lerna.core.secagg.messages import RoundId

_PREFIX = "v1"
_RECEIPT_PREFIX = "a1"  # under the MAC: a ticket is never a receipt, nor a receipt a ticket
MAX_TTL_SECONDS = 3600


class TicketClaims(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")
    round_id: RoundId
    expires_at: int = Field(ge=0)
    vector_length: int | None = Field(default=None, ge=1)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: str, prefix: str = _PREFIX) -> bytes:
    return hmac.new(key, f"{prefix}.{body}".encode(), hashlib.sha256).digest()


def issue_ticket(
    key: bytes,
    device_id: str,
    round_id: str,
    now: int,
    ttl: int = 300,
    vector_length: int | None = None,
) -> str:
    """A ticket valid for `ttl` seconds (at most an hour) from `now` (Unix seconds)."""
    claims = _claims(key, device_id, round_id, now, ttl, vector_length)
    body = _b64(claims.model_dump_json(exclude_none=True).encode())
    return f"{_PREFIX}.{body}.{_b64(_mac(key, body))}"


def issue_receipt(key: bytes, device_id: str, round_id: str, now: int, ttl: int = 300) -> str:
    """The FL-API's word that it accepted this device's upload in this round (two-server mode).

    The device hands it to the MPC gateway, which then adds the device's mask into the round's
    running sum before the round closes. Same format as a ticket under another prefix."""
    claims = _claims(key, device_id, round_id, now, ttl, None)
    body = _b64(claims.model_dump_json(exclude_none=True).encode())
    return f"{_RECEIPT_PREFIX}.{body}.{_b64(_mac(key, body, _RECEIPT_PREFIX))}"


def _claims(
    key: bytes, device_id: str, round_id: str, now: int, ttl: int, vector_length: int | None
) -> TicketClaims:
    if len(key) < 32:
        raise ValueError("ticket key must be at least 32 bytes")
    if not 0 < ttl <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl must be in (0, {MAX_TTL_SECONDS}] seconds")
    return TicketClaims(
        device_id=device_id, round_id=round_id, expires_at=now + ttl, vector_length=vector_length
    )


def verify_ticket(key: bytes, ticket: str, now: int) -> TicketClaims:
    """The ticket's claims, or one ProtocolError('invalid ticket') for any fault but expiry."""
    return _verify(key, ticket, now, _PREFIX, "ticket")


def verify_receipt(key: bytes, receipt: str, now: int) -> TicketClaims:
    """The receipt's claims, or one ProtocolError('invalid receipt') for any fault but expiry."""
    claims = _verify(key, receipt, now, _RECEIPT_PREFIX, "receipt")
    if claims.vector_length is not None:
        raise ProtocolError("invalid receipt")
    return claims


def _verify(key: bytes, token: str, now: int, prefix: str, kind: str) -> TicketClaims:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != prefix or len(token) > 2048:
        raise ProtocolError(f"invalid {kind}")
    try:
        mac = _unb64(parts[2])
    except ValueError as exc:
        raise ProtocolError(f"invalid {kind}") from exc
    if not hmac.compare_digest(mac, _mac(key, parts[1], prefix)):
        raise ProtocolError(f"invalid {kind}")
    try:
        claims = TicketClaims.model_validate(json.loads(_unb64(parts[1])))
    except (ValueError, ValidationError) as exc:
        raise ProtocolError(f"invalid {kind}") from exc
    if claims.expires_at > now + MAX_TTL_SECONDS:
        raise ProtocolError(f"invalid {kind}")
    if claims.expires_at < now:
        raise ProtocolError(f"{kind} expired")
    return claims
