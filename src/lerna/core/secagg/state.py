"""The SecAgg+ server's complete state as one pydantic model, so it survives between requests.

The FL-API keeps this in its database (`ServerState.model_dump_json()` / `model_validate_json`).
By construction it never holds an individual update, masked or not: masked inputs are added into
`masked_sum` on arrival and only their senders are remembered (for replay refusal). What it does
hold, the encrypted shares in transit and the running masked sum, is uniform-looking without the
shares' keys.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from lerna.core.secagg.messages import (
    B64Bytes,
    EncryptedShare,
    PartyKeys,
    RoundConfig,
    Stage,
    UnmaskRequest,
    UnmaskResponse,
)


class ServerState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: RoundConfig
    stage: Stage = "advertise_keys"
    abort_reason: str | None = None
    closed: list[str] = []
    """Stages whose deadline has passed, in order (for the dropout report)."""
    keys: dict[int, PartyKeys] = {}
    """U1 once stage 1 closes: parties whose keys were accepted."""
    shared: list[int] = []
    """U2: parties whose encrypted shares were accepted."""
    inboxes: dict[int, list[EncryptedShare]] = {}
    """Recipient -> the encrypted shares addressed to it (only from U2); emptied when done."""
    masked_from: list[int] = []
    """U3: senders whose masked input was added to `masked_sum`."""
    masked_sum: B64Bytes = b""
    unmask_request: UnmaskRequest | None = None
    """Fixed once issued: the server cannot later tell anyone a different survivor set."""
    responses: dict[int, UnmaskResponse] = {}
    """U5: survivors' revealed shares."""
    result: B64Bytes | None = None
