"""Gateway routes: what devices call, with a ticket the FL-API signed for them."""

from __future__ import annotations

from fastapi import APIRouter

from lerna.mpc.deps import DeviceClaims, ServiceDep
from lerna.mpc.schemas import ErrorPublic, SeedPublic

router = APIRouter(prefix="/gateway/v1", tags=["gateway"])


@router.post(
    "/seed",
    response_model=SeedPublic,
    responses={401: {"model": ErrorPublic}, 409: {"model": ErrorPublic}},
)
def get_seed(claims: DeviceClaims, service: ServiceDep) -> SeedPublic:
    """This device's mask seed for the round its ticket names."""
    return service.issue_seed(claims)
