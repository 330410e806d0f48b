"""Wire messages of SecAgg+ (one model per stage and direction), JSON-ready for HTTP.

Bytes travel as standard base64 strings. Every message names its round and, where it has one, its
sender, so the receiver can refuse a message from another round or a second copy of one. Field
validation here catches what pydantic can see (lengths, ranges, duplicates); the protocol objects
check what needs state (stage, membership, replay).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from lerna.core.secagg.errors import ProtocolError

MAX_PARTY = 2**31 - 1
MAX_VECTOR_LENGTH = 50_000_000


def _b64_decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError("invalid base64") from exc
    return value


def _b64_encode(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


B64Bytes = Annotated[
    bytes,
    BeforeValidator(_b64_decode),
    PlainSerializer(_b64_encode, return_type=str, when_used="json"),
]
Key32 = Annotated[B64Bytes, Field(min_length=32, max_length=32)]
RoundId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
PartyId = Annotated[int, Field(ge=1, le=MAX_PARTY)]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _distinct(values: list[int], what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} contains duplicates")


class RoundConfig(_Message):
    """Server -> every party, before stage 1: who takes part and the round's public parameters.

    `threshold` (t) is the least number of masked inputs the server must hold to unmask anything;
    `share_threshold` is how many of a party's `degree` neighbours must answer to rebuild one of its
    secrets, and must exceed degree / 2 so that no party's neighbours can be split into one half
    that reveals its key and another that reveals its self mask.
    """

    round_id: RoundId
    parties: list[PartyId] = Field(min_length=2)
    threshold: int = Field(ge=2)
    degree: int = Field(ge=1)
    share_threshold: int = Field(ge=1)
    graph_seed: Key32
    vector_length: int = Field(ge=1, le=MAX_VECTOR_LENGTH)

    @model_validator(mode="after")
    def _consistent(self) -> RoundConfig:
        _distinct(self.parties, "parties")
        n = len(self.parties)
        if self.threshold > n:
            raise ValueError(f"threshold {self.threshold} exceeds the {n} parties")
        if self.degree > n - 1:
            raise ValueError(f"degree {self.degree} exceeds n - 1 = {n - 1}")
        if self.degree < n - 1 and self.degree % 2:
            raise ValueError("degree must be even unless the graph is complete")
        if not self.degree // 2 < self.share_threshold <= self.degree:
            raise ValueError(
                f"share_threshold must be in ({self.degree // 2}, {self.degree}], "
                f"got {self.share_threshold}"
            )
        return self


class KeyAdvertisement(_Message):
    """Stage 1, party -> server: its two fresh public keys (encryption, mask agreement)."""

    round_id: RoundId
    sender: PartyId
    cipher_public_key: Key32
    mask_public_key: Key32


class PartyKeys(_Message):
    party: PartyId
    cipher_public_key: Key32
    mask_public_key: Key32


class KeyDirectory(_Message):
    """Stage 2, server -> party: the advertised keys of its neighbours."""

    round_id: RoundId
    recipient: PartyId
    keys: list[PartyKeys]

    @model_validator(mode="after")
    def _unique(self) -> KeyDirectory:
        _distinct([k.party for k in self.keys], "keys")
        return self


class EncryptedShare(_Message):
    sender: PartyId
    recipient: PartyId
    ciphertext: B64Bytes = Field(max_length=512)


class SharesUpload(_Message):
    """Stage 2, party -> server: one AES-GCM ciphertext per neighbour, holding that neighbour's
    Shamir shares of the sender's mask-agreement key and self-mask seed."""

    round_id: RoundId
    sender: PartyId
    shares: list[EncryptedShare]

    @model_validator(mode="after")
    def _from_sender(self) -> SharesUpload:
        if any(s.sender != self.sender for s in self.shares):
            raise ValueError("every share must come from the uploading sender")
        _distinct([s.recipient for s in self.shares], "share recipients")
        return self


class SharesInbox(_Message):
    """Stage 3, server -> party: the ciphertexts its neighbours addressed to it."""

    round_id: RoundId
    recipient: PartyId
    shares: list[EncryptedShare]

    @model_validator(mode="after")
    def _to_recipient(self) -> SharesInbox:
        if any(s.recipient != self.recipient for s in self.shares):
            raise ValueError("every share must be addressed to the recipient")
        _distinct([s.sender for s in self.shares], "share senders")
        return self


# A masked input may also travel as the raw little-endian vector (``application/octet-stream``)
# with its round and sender in these headers: the largest message of a round then skips base64
# and JSON on both sides. The JSON form stays valid.
ROUND_HEADER = "X-SecAgg-Round"
SENDER_HEADER = "X-SecAgg-Sender"


class MaskedInput(_Message):
    """Stage 3, party -> server: its quantised update plus masks, little-endian uint32."""

    round_id: RoundId
    sender: PartyId
    vector: B64Bytes

    def as_array(self, length: int) -> npt.NDArray[np.uint32]:
        return decode_vector(self.vector, length)


class UnmaskRequest(_Message):
    """Stage 4, server -> survivors: who sent a masked input and who dropped after sharing."""

    round_id: RoundId
    survivors: list[PartyId]
    dropped: list[PartyId]

    @model_validator(mode="after")
    def _disjoint(self) -> UnmaskRequest:
        _distinct(self.survivors, "survivors")
        _distinct(self.dropped, "dropped")
        return self


class RevealedShare(_Message):
    owner: PartyId
    share: B64Bytes = Field(min_length=66, max_length=66)


class UnmaskResponse(_Message):
    """Stage 4, survivor -> server: key shares of dropped neighbours, mask shares of survivors."""

    round_id: RoundId
    sender: PartyId
    key_shares: list[RevealedShare]
    mask_shares: list[RevealedShare]

    @model_validator(mode="after")
    def _never_both(self) -> UnmaskResponse:
        keys = [s.owner for s in self.key_shares]
        masks = [s.owner for s in self.mask_shares]
        _distinct(keys, "key_shares")
        _distinct(masks, "mask_shares")
        if set(keys) & set(masks):
            raise ValueError("a party's key share and mask share may never both be revealed")
        return self


Stage = Literal["advertise_keys", "share_keys", "masked_input", "unmasking", "done", "aborted"]


def encode_vector(vector: npt.NDArray[np.uint32]) -> bytes:
    return np.ascontiguousarray(vector, dtype="<u4").tobytes()


def decode_vector(data: bytes, length: int) -> npt.NDArray[np.uint32]:
    """Refuses a byte string that is not exactly `length` little-endian uint32 values."""
    if len(data) != 4 * length:
        raise ProtocolError(f"vector must hold {length} uint32 values ({4 * length} bytes)")
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


def as_uint32(values: npt.ArrayLike, length: int) -> npt.NDArray[np.uint32]:
    """Accept an integer vector only if every value already lies in [0, 2^32)."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != length:
        raise ProtocolError(f"vector must be 1-D with {length} values, got shape {arr.shape}")
    if arr.dtype == np.uint32:
        return arr
    if not np.issubdtype(arr.dtype, np.integer):
        raise ProtocolError("vector must hold integers (quantise floats first)")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= 2**32):
        raise ProtocolError("vector values must lie in [0, 2^32)")
    return arr.astype(np.uint32)
