"""Service routes: what the FL-API calls, with its own service token."""

from __future__ import annotations

from fastapi import APIRouter, Path

from lerna.core.secagg.messages import RoundId
from lerna.mpc.deps import FLApiCaller, ServiceDep
from lerna.mpc.schemas import ErrorPublic, MaskSumCreate, MaskSumPublic

router = APIRouter(prefix="/v1/rounds", tags=["rounds"])


@router.post(
    "/{round_id}/mask-sum",
    response_model=MaskSumPublic,
    responses={
        401: {"model": ErrorPublic},
        409: {"model": ErrorPublic},
        422: {"model": ErrorPublic},
    },
)
def mask_sum(
    _caller: FLApiCaller,
    service: ServiceDep,
    body: MaskSumCreate,
    round_id: RoundId = Path(),
) -> MaskSumPublic:
    """The negated sum of the accepted devices' masks; one set per round, at least t devices."""
    return service.negated_mask_sum(round_id, body)
