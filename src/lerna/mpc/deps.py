"""Route dependencies: the service, and the two kinds of caller (device, FL-API)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lerna.core.secagg.tickets import TicketClaims
from lerna.mpc.service import MaskService

_bearer = HTTPBearer(auto_error=False)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def get_service(request: Request) -> MaskService:
    service: MaskService = request.app.state.mask_service
    return service


ServiceDep = Annotated[MaskService, Depends(get_service)]


def device_claims(service: ServiceDep, credentials: Bearer) -> TicketClaims:
    return service.device_claims(credentials.credentials if credentials else None)


def receipt_claims(service: ServiceDep, credentials: Bearer) -> TicketClaims:
    return service.receipt_claims(credentials.credentials if credentials else None)


def fl_api(service: ServiceDep, credentials: Bearer) -> None:
    service.check_fl_api(credentials.credentials if credentials else None)


DeviceClaims = Annotated[TicketClaims, Depends(device_claims)]
ReceiptClaims = Annotated[TicketClaims, Depends(receipt_claims)]
FLApiCaller = Annotated[None, Depends(fl_api)]
