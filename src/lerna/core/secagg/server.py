"""The server side of SecAgg+: collect each stage's messages, close the stage at its deadline,
and unmask only the sum.

The FL-API drives it: `receive_*` for each incoming message, `close_*` when a stage's deadline
passes (whoever has not spoken by then has dropped), and `key_directory` / `shares_inbox` /
`unmask_request` for what each device downloads. Every refusal is a `ProtocolError` and leaves
the state unchanged; fewer than `t` parties at any stage is a `RoundAborted`, after which the
server issues no unmask request, so no device reveals anything.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lerna.core.secagg import _crypto, derivation, shamir
from lerna.core.secagg.errors import ProtocolError, RoundAborted
from lerna.core.secagg.graph import neighbours
from lerna.core.secagg.messages import (
    KeyAdvertisement,
    KeyDirectory,
    MaskedInput,
    PartyKeys,
    RoundConfig,
    SharesInbox,
    SharesUpload,
    UnmaskRequest,
    UnmaskResponse,
    decode_vector,
    encode_vector,
)
from lerna.core.secagg.state import ServerState


class SecAggServer:
    """One SecAgg+ round, server side; rebuild from `state` between requests."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        config = state.config
        self._graph = neighbours(config.parties, config.degree, config.graph_seed)

    @classmethod
    def start(cls, config: RoundConfig) -> SecAggServer:
        return cls(ServerState(config=config, masked_sum=bytes(4 * config.vector_length)))

    @classmethod
    def from_json(cls, data: str | bytes) -> SecAggServer:
        return cls(ServerState.model_validate_json(data))

    def to_json(self) -> str:
        return self.state.model_dump_json()

    @property
    def config(self) -> RoundConfig:
        return self.state.config

    # -- bookkeeping -------------------------------------------------------------------------

    def _expect(self, stage: str, round_id: str) -> None:
        if self.state.stage == "aborted":
            raise RoundAborted(self.state.abort_reason or "round aborted")
        if round_id != self.config.round_id:
            raise ProtocolError("message belongs to another round")
        if self.state.stage != stage:
            raise ProtocolError(f"out of order: round is at stage '{self.state.stage}'")

    def _abort(self, reason: str) -> RoundAborted:
        self.state.stage = "aborted"
        self.state.abort_reason = reason
        self.state.inboxes = {}
        self.state.masked_sum = b""
        return RoundAborted(reason)

    def _close(self, stage: str, count: int) -> None:
        """Record that `stage`'s deadline passed (who dropped is now known), then apply t."""
        if stage not in self.state.closed:
            self.state.closed.append(stage)
        if count < self.config.threshold:
            raise self._abort(f"fewer than t parties after {stage}")

    def dropouts(self) -> dict[str, list[int]]:
        """Who dropped at each stage whose deadline has passed (also after an abort)."""
        s = self.state
        arrived = {
            "advertise_keys": (set(self.config.parties), set(s.keys)),
            "share_keys": (set(s.keys), set(s.shared)),
            "masked_input": (set(s.shared), set(s.masked_from)),
            "unmasking": (set(s.masked_from), set(s.responses)),
        }
        return {
            stage: sorted(before - after)
            for stage, (before, after) in arrived.items()
            if stage in s.closed
        }

    # -- stage 1: advertise keys --------------------------------------------------------------

    def receive_keys(self, msg: KeyAdvertisement) -> None:
        self._expect("advertise_keys", msg.round_id)
        if msg.sender not in self._graph:
            raise ProtocolError("sender is not in this round")
        if msg.sender in self.state.keys:
            raise ProtocolError("replayed message")
        seen = {k.cipher_public_key for k in self.state.keys.values()}
        seen |= {k.mask_public_key for k in self.state.keys.values()}
        if {msg.cipher_public_key, msg.mask_public_key} & seen or (
            msg.cipher_public_key == msg.mask_public_key
        ):
            raise ProtocolError("public key already in use")
        self.state.keys[msg.sender] = PartyKeys(
            party=msg.sender,
            cipher_public_key=msg.cipher_public_key,
            mask_public_key=msg.mask_public_key,
        )

    def close_advertise_keys(self) -> None:
        self._expect("advertise_keys", self.config.round_id)
        self._close("advertise_keys", len(self.state.keys))
        self.state.stage = "share_keys"

    def key_directory(self, party: int) -> KeyDirectory:
        self._expect("share_keys", self.config.round_id)
        if party not in self.state.keys:
            raise ProtocolError("party did not advertise keys")
        keys = [self.state.keys[j] for j in sorted(self._graph[party]) if j in self.state.keys]
        return KeyDirectory(round_id=self.config.round_id, recipient=party, keys=keys)

    # -- stage 2: share keys ------------------------------------------------------------------

    def receive_shares(self, msg: SharesUpload) -> None:
        self._expect("share_keys", msg.round_id)
        if msg.sender not in self.state.keys:
            raise ProtocolError("sender did not advertise keys")
        if msg.sender in self.state.shared:
            raise ProtocolError("replayed message")
        expected = {j for j in self._graph[msg.sender] if j in self.state.keys}
        if {s.recipient for s in msg.shares} != expected:
            raise ProtocolError("shares must address exactly the advertised neighbours")
        for share in msg.shares:
            self.state.inboxes.setdefault(share.recipient, []).append(share)
        self.state.shared.append(msg.sender)

    def close_share_keys(self) -> None:
        self._expect("share_keys", self.config.round_id)
        self._close("share_keys", len(self.state.shared))
        self.state.stage = "masked_input"

    def shares_inbox(self, party: int) -> SharesInbox:
        self._expect("masked_input", self.config.round_id)
        if party not in self.state.shared:
            raise ProtocolError("party did not share keys")
        shares = sorted(self.state.inboxes.get(party, []), key=lambda s: s.sender)
        return SharesInbox(round_id=self.config.round_id, recipient=party, shares=shares)

    # -- stage 3: masked input ----------------------------------------------------------------

    def receive_masked_input(self, msg: MaskedInput) -> None:
        self._expect("masked_input", msg.round_id)
        if msg.sender not in self.state.shared:
            raise ProtocolError("sender did not share keys")
        if msg.sender in self.state.masked_from:
            raise ProtocolError("replayed message")
        y = msg.as_array(self.config.vector_length)
        total = decode_vector(self.state.masked_sum, self.config.vector_length) + y
        self.state.masked_sum = encode_vector(total)
        self.state.masked_from.append(msg.sender)

    def close_masked_input(self) -> UnmaskRequest:
        """Fix the survivor set once; a second call returns the same request."""
        if self.state.unmask_request is not None and self.state.stage == "unmasking":
            return self.state.unmask_request
        self._expect("masked_input", self.config.round_id)
        self._close("masked_input", len(self.state.masked_from))
        survivors = sorted(self.state.masked_from)
        dropped = sorted(set(self.state.shared) - set(survivors))
        request = UnmaskRequest(round_id=self.config.round_id, survivors=survivors, dropped=dropped)
        self.state.unmask_request = request
        self.state.stage = "unmasking"
        return request

    def unmask_request(self) -> UnmaskRequest:
        self._expect("unmasking", self.config.round_id)
        assert self.state.unmask_request is not None
        return self.state.unmask_request

    # -- stage 4: unmasking -------------------------------------------------------------------

    def receive_unmask(self, msg: UnmaskResponse) -> None:
        self._expect("unmasking", msg.round_id)
        request = self.unmask_request()
        if msg.sender not in request.survivors:
            raise ProtocolError("sender is not a survivor")
        if msg.sender in self.state.responses:
            raise ProtocolError("replayed message")
        mine = self._graph[msg.sender]
        if not {s.owner for s in msg.key_shares} <= set(request.dropped) & mine:
            raise ProtocolError("key share revealed for a party that did not drop")
        if not {s.owner for s in msg.mask_shares} <= set(request.survivors) & mine:
            raise ProtocolError("mask share revealed for a party that did not survive")
        for s in [*msg.key_shares, *msg.mask_shares]:
            shamir.parse_share(s.share)
        self.state.responses[msg.sender] = msg

    def finalize(self) -> npt.NDArray[np.uint32]:
        """Remove every remaining mask and return the sum of the survivors' quantised inputs."""
        if self.state.stage == "done" and self.state.result is not None:
            return decode_vector(self.state.result, self.config.vector_length)
        request = self.unmask_request()
        self._close("unmasking", len(self.state.responses))
        d, t_share = self.config.vector_length, self.config.share_threshold
        round_id = self.config.round_id
        key_shares: dict[int, list[tuple[int, bytes]]] = {}
        mask_shares: dict[int, list[tuple[int, bytes]]] = {}
        for holder, response in self.state.responses.items():
            for s in response.key_shares:
                key_shares.setdefault(s.owner, []).append((holder, s.share))
            for s in response.mask_shares:
                mask_shares.setdefault(s.owner, []).append((holder, s.share))
        total = decode_vector(self.state.masked_sum, d)
        try:
            for i in request.survivors:
                seed = shamir.combine(mask_shares.get(i, []), t_share)
                total -= derivation.self_mask(seed, d)
            survivors = set(request.survivors)
            for j in request.dropped:
                mask_sk = shamir.combine(key_shares.get(j, []), t_share)
                if _crypto.x25519_public(mask_sk) != self.state.keys[j].mask_public_key:
                    raise ProtocolError("reconstructed key does not match the advertised key")
                peers = {i: self.state.keys[i].mask_public_key for i in self._graph[j] & survivors}
                derivation.add_pairwise_masks(total, mask_sk, peers, round_id, j)
        except ProtocolError as exc:
            raise self._abort(f"unmasking failed: {exc.reason}") from exc
        self.state.stage = "done"
        self.state.result = encode_vector(total)
        self.state.inboxes = {}
        return total
