"""The device side of SecAgg+: one method per stage, each taking the server's broadcast and
returning the device's message.

The client enforces the rules a server could try to break: stages run once and in order, shares
only come from graph neighbours and must authenticate, and at unmasking it answers once, for each
neighbour revealing either the key share (the neighbour dropped) or the self-mask share (it
survived), never both, and nothing at all if the server claims fewer than `t` survivors.
"""

from __future__ import annotations

import numpy.typing as npt

from lerna.core.secagg import _crypto, derivation, shamir
from lerna.core.secagg.errors import ProtocolError, RoundAborted
from lerna.core.secagg.graph import neighbours_of
from lerna.core.secagg.messages import (
    EncryptedShare,
    KeyAdvertisement,
    KeyDirectory,
    MaskedInput,
    PartyKeys,
    RevealedShare,
    RoundConfig,
    SharesInbox,
    SharesUpload,
    UnmaskRequest,
    UnmaskResponse,
    as_uint32,
    encode_vector,
)

_STAGES = ("new", "advertised", "shared", "masked", "unmasked")


class SecAggClient:
    """One device's view of one SecAgg+ round. Create a new client per round."""

    def __init__(self, party: int) -> None:
        self.party = party
        self._stage = "new"
        self._config: RoundConfig | None = None
        self._neighbours: frozenset[int] = frozenset()
        self._cipher_sk = b""
        self._mask_sk = b""
        self._self_seed = b""
        self._peer_keys: dict[int, PartyKeys] = {}
        self._cipher_keys: dict[int, bytes] = {}
        self._held: dict[int, tuple[bytes, bytes]] = {}  # owner -> (key share, mask share)

    @property
    def config(self) -> RoundConfig:
        if self._config is None:
            raise ProtocolError("round not started")
        return self._config

    def _advance(self, expected: str) -> None:
        if self._stage != expected:
            raise ProtocolError(f"out of order: client is at stage '{self._stage}'")
        self._stage = _STAGES[_STAGES.index(expected) + 1]

    def _check_round(self, round_id: str) -> None:
        if round_id != self.config.round_id:
            raise ProtocolError("message belongs to another round")

    def advertise_keys(self, config: RoundConfig) -> KeyAdvertisement:
        """Stage 1: fresh key pairs and self-mask seed for this round only."""
        if self.party not in config.parties:
            raise ProtocolError("party is not in this round")
        self._advance("new")
        self._config = config
        self._neighbours = neighbours_of(
            self.party, config.parties, config.degree, config.graph_seed
        )
        self._cipher_sk, cipher_pk = _crypto.x25519_keypair()
        self._mask_sk, mask_pk = _crypto.x25519_keypair()
        self._self_seed = _crypto.random_bytes()
        return KeyAdvertisement(
            round_id=config.round_id,
            sender=self.party,
            cipher_public_key=cipher_pk,
            mask_public_key=mask_pk,
        )

    def share_keys(self, directory: KeyDirectory) -> SharesUpload:
        """Stage 2: Shamir-share the mask key and self-mask seed among the advertised neighbours."""
        config = self.config
        self._check_round(directory.round_id)
        if directory.recipient != self.party:
            raise ProtocolError("directory addressed to another party")
        peers = {k.party: k for k in directory.keys}
        if not set(peers) <= self._neighbours:
            raise ProtocolError("directory lists a party that is not a neighbour")
        public = [k.cipher_public_key for k in directory.keys]
        public += [k.mask_public_key for k in directory.keys]
        if len(set(public)) != len(public):
            raise ProtocolError("directory repeats a public key")
        if len(peers) < config.share_threshold:
            raise RoundAborted("too few neighbours to share secrets with")
        self._advance("advertised")
        self._peer_keys = peers
        holders = sorted(peers)
        key_shares = shamir.split(self._mask_sk, holders, config.share_threshold)
        mask_shares = shamir.split(self._self_seed, holders, config.share_threshold)
        keys = self._cipher_keys = derivation.cipher_keys(
            self._cipher_sk,
            {j: k.cipher_public_key for j, k in peers.items()},
            config.round_id,
            self.party,
        )
        shares = []
        for j in holders:
            key = keys[j]
            plaintext = derivation.pack_shares(self.party, j, key_shares[j], mask_shares[j])
            ad = derivation.share_ad(config.round_id, self.party, j)
            shares.append(
                EncryptedShare(
                    sender=self.party, recipient=j, ciphertext=_crypto.seal(key, plaintext, ad)
                )
            )
        return SharesUpload(round_id=config.round_id, sender=self.party, shares=shares)

    def masked_input(self, inbox: SharesInbox, vector: npt.ArrayLike) -> MaskedInput:
        """Stage 3: keep the neighbours' shares, send the update plus self and pairwise masks.

        `vector` is the already quantised update (integers in [0, 2^32)).
        """
        config = self.config
        self._check_round(inbox.round_id)
        if inbox.recipient != self.party:
            raise ProtocolError("inbox addressed to another party")
        x = as_uint32(vector, config.vector_length)
        if not {s.sender for s in inbox.shares} <= set(self._peer_keys):
            raise ProtocolError("share from a party that is not an advertised neighbour")
        keys = self._cipher_keys
        held: dict[int, tuple[bytes, bytes]] = {}
        for share in inbox.shares:
            key = keys[share.sender]
            ad = derivation.share_ad(config.round_id, share.sender, self.party)
            try:
                plaintext = _crypto.open_sealed(key, share.ciphertext, ad)
            except _crypto.DecryptionFailed as exc:
                raise ProtocolError("share does not authenticate") from exc
            pair = derivation.unpack_shares(plaintext, share.sender, self.party)
            for part in pair:
                shamir.parse_share(part)
            held[share.sender] = pair
        self._advance("shared")
        self._held = held
        y = x + derivation.self_mask(self._self_seed, config.vector_length)
        derivation.add_pairwise_masks(
            y,
            self._mask_sk,
            {j: self._peer_keys[j].mask_public_key for j in held},
            config.round_id,
            self.party,
        )
        return MaskedInput(round_id=config.round_id, sender=self.party, vector=encode_vector(y))

    def unmask(self, request: UnmaskRequest) -> UnmaskResponse:
        """Stage 4, answered at most once: per neighbour, key share if dropped, mask share if not."""
        config = self.config
        self._check_round(request.round_id)
        survivors, dropped = set(request.survivors), set(request.dropped)
        if survivors & dropped:
            raise ProtocolError("a party cannot be both a survivor and dropped")
        if self.party not in survivors:
            raise ProtocolError("request does not list this party as a survivor")
        if len(survivors) < config.threshold:
            raise RoundAborted("fewer than t survivors")
        if not (survivors | dropped) <= set(config.parties):
            raise ProtocolError("request names parties outside the round")
        self._advance("masked")
        key_shares, mask_shares = [], []
        for owner, (key_share, mask_share) in sorted(self._held.items()):
            if owner in dropped:
                key_shares.append(RevealedShare(owner=owner, share=key_share))
            elif owner in survivors:
                mask_shares.append(RevealedShare(owner=owner, share=mask_share))
        self._held = {}
        return UnmaskResponse(
            round_id=config.round_id,
            sender=self.party,
            key_shares=key_shares,
            mask_shares=mask_shares,
        )
