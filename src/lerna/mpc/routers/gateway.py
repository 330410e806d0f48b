"""Gateway routes: what devices call, with a ticket the FL-API signed for them."""

from __future__ import annotations

from fastapi import APIRouter

from lerna.mpc.deps import DeviceClaims, ReceiptClaims, ServiceDep
from lerna.mpc.schemas import ErrorPublic, ReceiptPublic, SeedPublic

router = APIRouter(prefix="/gateway/v1", tags=["gateway"])


@router.post(
    "/seed",
    response_model=SeedPublic,
    responses={401: {"model": ErrorPublic}, 409: {"model": ErrorPublic}},
)
def get_seed(claims: DeviceClaims, service: ServiceDep) -> SeedPublic:
    """This device's mask seed for the round its ticket names."""
    return service.issue_seed(claims)


@router.post(
    "/accepted",
    response_model=ReceiptPublic,
    responses={
        401: {"model": ErrorPublic},
        409: {"model": ErrorPublic},
        422: {"model": ErrorPublic},
    },
)
def upload_accepted(claims: ReceiptClaims, service: ServiceDep) -> ReceiptPublic:
    """The FL-API's receipt for this device's upload, passed on by the device: the service adds
    the device's mask into the round's running sum ahead of the close (best effort for the
    device; a receipt never passed on only makes the close a little slower)."""
    return service.accept_receipt(claims)
