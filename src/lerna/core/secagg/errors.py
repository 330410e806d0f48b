"""Exceptions of the secure-aggregation layer.

    SecAggError
    +-- ProtocolError   a message was refused: replayed, out of order, malformed, wrong length,
    |                   from an unknown party, or a request that would break the protocol's
    |                   rules (both shares of one device, a survivor set below the threshold).
    +-- RoundAborted    the round cannot finish (fewer than `t` survivors); nothing is revealed.

One type per failure class, on purpose: callers (the FL-API, the SDK) map `ProtocolError` to a
4xx and `RoundAborted` to a closed round, and never need to branch on which check failed. The
`reason` is a short stable code that is safe to log and to return to the peer: it never contains
key material or vector values.
"""

from __future__ import annotations


class SecAggError(Exception):
    """Base class for every error this package raises on purpose."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProtocolError(SecAggError):
    """A message or request was refused; the protocol state is unchanged."""


class RoundAborted(SecAggError):
    """Fewer than `t` parties survive; the round ends and no share is revealed."""
