"""Service routes: what the FL-API calls, with its own service token."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request, Response

from lerna.core.secagg.messages import RoundId
from lerna.mpc.deps import FLApiCaller, ServiceDep
from lerna.mpc.schemas import ErrorPublic, MaskSumCreate, MaskSumPublic

router = APIRouter(prefix="/v1/rounds", tags=["rounds"])


@router.post(
    "/{round_id}/mask-sum",
    response_model=MaskSumPublic,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        401: {"model": ErrorPublic},
        409: {"model": ErrorPublic},
        422: {"model": ErrorPublic},
    },
)
def mask_sum(
    request: Request,
    _caller: FLApiCaller,
    service: ServiceDep,
    body: MaskSumCreate,
    round_id: RoundId = Path(),
) -> MaskSumPublic | Response:
    """The negated sum of the accepted devices' masks; one set per round, at least t devices.

    ``Accept: application/octet-stream`` gets the vector as raw little-endian uint32 (the rest
    in ``X-Lerna-*`` headers): the answer is on the round's critical path, and base64 in JSON
    costs as much as the MPC's own work at a 100-device round."""
    answer = service.negated_mask_sum(round_id, body)
    if "application/octet-stream" not in request.headers.get("accept", ""):
        return answer
    return Response(
        bytes(answer.negated_mask_sum),
        media_type="application/octet-stream",
        headers={
            "X-Lerna-Round-Id": answer.round_id,
            "X-Lerna-Device-Count": str(answer.device_count),
            "X-Lerna-Vector-Length": str(answer.vector_length),
            "X-Lerna-Noise-Added": "1" if answer.noise_added else "0",
        },
    )
