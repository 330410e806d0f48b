"""Secure aggregation: SecAgg+ (no trusted party) and two-server masking, transport-free.

Public entry points:
- `SecAggClient` / `SecAggServer` (+ `ServerState`): the four SecAgg+ stages as objects that take
  and return pydantic messages (`messages`), so any transport (HTTP, in-process) can carry them.
- `Quantizer`: clipped floats <-> Z_{2^32} fixed point with stochastic rounding.
- `two_server`: per-device seeds and negated mask sums for the MPC-service mode.
- `tickets`: short-lived HMAC device tickets the FL-API issues and the MPC gateway verifies.
- Errors: `SecAggError` > `ProtocolError`, `RoundAborted` (see `errors`).
"""

from lerna.core.secagg.client import SecAggClient
from lerna.core.secagg.errors import ProtocolError, RoundAborted, SecAggError
from lerna.core.secagg.graph import default_degree, neighbours
from lerna.core.secagg.quantize import Quantizer
from lerna.core.secagg.server import SecAggServer
from lerna.core.secagg.state import ServerState

__all__ = [
    "ProtocolError",
    "Quantizer",
    "RoundAborted",
    "SecAggClient",
    "SecAggError",
    "SecAggServer",
    "ServerState",
    "default_degree",
    "neighbours",
]
