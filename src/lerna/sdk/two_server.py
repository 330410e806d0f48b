"""The device side of a two-server round: seed from the MPC gateway, mask, upload.

The FL-API's check-in answer carries a ticket for the MPC gateway. The device trades it for
its per-round seed (the FL-API never sees the seed; the MPC service never sees the update),
quantises its packed vector, adds ``PRG(seed)`` modulo 2^32 and uploads the result to the
FL-API. The upload alone is uniformly random-looking; only the sum over at least ``t``
devices, once the MPC service has sent the negated sum of their masks, means anything.

The gateway calls carry the ticket (for the seed) or the FL-API's upload receipt (passed on
after the upload, see ``pass_on_receipt``), never the device's FL-API credential.
"""

from __future__ import annotations

import base64
import binascii
import uuid

import httpx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from lerna.core.dp import PrivacyConfig
from lerna.core.protocol import MaskedUpload, TwoServerAssignment, UploadAccepted
from lerna.core.secagg import two_server
from lerna.core.secure_update import quantizer
from lerna.sdk.api import DeviceAPI
from lerna.sdk.errors import ProtocolError, ServerError

RECEIPT_HEADER = "X-Lerna-MPC-Receipt"


def _code(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("code", "refused"))
    except ValueError:
        return "refused"


class _Seed(BaseModel):
    model_config = ConfigDict(extra="ignore")

    round_id: str
    device_id: str
    seed: str = Field(min_length=1)


def fetch_seed(api: DeviceAPI, assignment: TwoServerAssignment) -> bytes:
    """This device's seed for the round, from the MPC gateway named in the assignment."""
    url = f"{assignment.gateway_url}/seed"
    try:
        resp = api.http.post(url, headers={"Authorization": f"Bearer {assignment.ticket}"})
    except httpx.HTTPError as exc:
        raise ServerError(f"MPC gateway unreachable: {exc}") from exc
    if resp.status_code >= 500:
        raise ServerError(f"MPC gateway: server error {resp.status_code}")
    if resp.status_code >= 400:  # a refused ticket is about this round, not the device
        code = _code(resp)
        raise ProtocolError(
            f"MPC gateway refused: {resp.status_code} {code}", code, resp.status_code
        )
    try:
        body = _Seed.model_validate(resp.json())
        seed = base64.b64decode(body.seed, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ProtocolError(f"MPC gateway sent an unreadable seed: {exc}", "bad_seed") from None
    if body.round_id != assignment.mpc_round_id or len(seed) != 32:
        raise ProtocolError("MPC gateway sent a seed for another round", "bad_seed")
    return seed


def masked_vector(
    vector: np.ndarray,
    seed: bytes,
    assignment: TwoServerAssignment,
    privacy: PrivacyConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """quantise(vector) + PRG(seed) mod 2^32, in the round's fixed point."""
    if vector.shape != (assignment.vector_length,):
        raise ProtocolError(
            f"packed update has {vector.shape[0]} values, the round expects"
            f" {assignment.vector_length}",
            "bad_update",
        )
    q = quantizer(privacy, assignment.max_parties)
    return two_server.mask_update(seed, q.quantize(vector, rng), assignment.vector_length)


def upload(
    api: DeviceAPI,
    round_id: int,
    base_version: int,
    assignment: TwoServerAssignment,
    vector: np.ndarray,
    privacy: PrivacyConfig,
    rng: np.random.Generator,
) -> UploadAccepted:
    """Get the seed, mask the packed update and send it; the float vector is not kept."""
    seed = fetch_seed(api, assignment)
    masked = masked_vector(vector, seed, assignment, privacy, rng)
    body = MaskedUpload(
        round_id=round_id,
        base_version=base_version,
        upload_id=uuid.uuid4().hex,
        vector=masked.astype("<u4").tobytes(),
    )
    resp = api._call(
        "POST",
        f"/v1/device/rounds/{round_id}/upload/masked",
        content=body.model_dump_json(),
        headers={"Content-Type": "application/json"},
    )
    accepted = UploadAccepted.model_validate(resp.json())
    receipt = resp.headers.get(RECEIPT_HEADER)
    if receipt:
        pass_on_receipt(api, assignment, receipt)
    return accepted


def pass_on_receipt(api: DeviceAPI, assignment: TwoServerAssignment, receipt: str) -> bool:
    """Hand the FL-API's receipt for the accepted upload to the MPC gateway, so the MPC service
    adds this device's mask into the round's sum ahead of the close. Best effort: the upload
    already counts, and a receipt that never arrives only makes the close slightly slower."""
    try:
        resp = api.http.post(
            f"{assignment.gateway_url}/accepted",
            headers={"Authorization": f"Bearer {receipt}"},
        )
    except httpx.HTTPError:
        return False
    return resp.status_code < 400
