"""Two-server rounds: the masked upload route, and wiring the app to its MPC service.

A device of a two-server round got a ticket at check-in, fetched its seed from the MPC gateway,
and posts here its masked vector (``MaskedUpload``). The last expected upload closes the round:
the FL-API asks the MPC service for the negated mask sum and publishes the new version.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from lerna.core.protocol import MaskedUpload, UploadAccepted
from lerna.server.bodies import read_limited, training_device
from lerna.server.errors import Conflict, NotFound, Unprocessable
from lerna.server.services import rounds, two_server_rounds
from lerna.server.services.mpc_client import MPCLink
from lerna.server.settings import Settings

router = APIRouter(prefix="/v1/device/rounds", tags=["device protocol"])


RECEIPT_HEADER = "X-Lerna-MPC-Receipt"


@router.post("/{round_id}/upload/masked", response_model=UploadAccepted)
async def masked_upload(round_id: int, request: Request, response: Response) -> UploadAccepted:
    """Body: a ``MaskedUpload`` (JSON): the quantised packed update plus its PRG mask.

    The answer carries, in the ``X-Lerna-MPC-Receipt`` header (a header, so that older SDKs
    parse the body as before), a receipt the device passes on to the MPC gateway."""
    body = await read_limited(request, request.app.state.settings.max_upload_bytes)
    accepted, receipt = await run_in_threadpool(_accept, request, round_id, body)
    if receipt:
        response.headers[RECEIPT_HEADER] = receipt
    return accepted


def _accept(request: Request, round_id: int, body: bytes) -> tuple[UploadAccepted, str | None]:
    try:
        upload = MaskedUpload.model_validate_json(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise Unprocessable(
            f"{where}: {err['msg']}" if where else err["msg"], "bad_update"
        ) from None
    if upload.round_id != round_id:
        raise Unprocessable("upload must name this round", "bad_update")
    with request.app.state.session_factory() as session, session.begin():
        device = training_device(session, request)
        task, rnd = rounds.lock_round(session, round_id, device)
        if not two_server_rounds.is_two_server(rnd):
            raise NotFound(
                f"round {round_id} does not use two-server aggregation", "not_two_server"
            )
        if rnd.state != "open":
            raise Conflict(f"round {round_id} is {rnd.state}", "round_closed")
        now = datetime.now(UTC)
        two_server_rounds.receive(session, rnd, device, upload, now)
        receipt = two_server_rounds.receipt(rnd, device, session, now)
        if two_server_rounds.everyone_uploaded(rnd, now):
            rounds.finalize(session, task, rnd, now)
            receipt = None  # the set is answered: nothing left for the MPC to add ahead
        return UploadAccepted(round_id=round_id, uploads=rnd.uploads), receipt


def link_from(settings: Settings) -> MPCLink | None:
    """The MPC link the settings describe; None when two-server mode cannot run here.

    A deployment names the service (``LERNA_MPC_URL``) and must give both shared secrets; the
    embedded default generates them into the data dir and waits for ``lerna serve all`` to
    attach the MPC app it mounts."""
    token = settings.resolved_mpc_secret("mpc_token")
    ticket_key = settings.resolved_mpc_secret("mpc_ticket_key")
    if settings.mpc_url and not (token and ticket_key):
        raise RuntimeError("LERNA_MPC_URL needs LERNA_MPC_TOKEN and LERNA_MPC_TICKET_KEY")
    if not (token and ticket_key):
        return None
    url = settings.mpc_url.rstrip("/") if settings.mpc_url else None
    gateway = settings.mpc_gateway_url or (url or "")
    return MPCLink(
        base_url=url,
        gateway_url=gateway.rstrip("/") + "/gateway/v1" if gateway else "",
        token=token,
        ticket_key=ticket_key.encode(),
    )


def install(app: FastAPI) -> None:
    """Add the route and hand every database session the app's MPC link (the round ticker and
    request handlers close rounds, and both get their sessions from the same factory)."""
    app.include_router(router)
    link = link_from(app.state.settings)
    app.state.mpc_link = link
    app.state.session_factory.configure(info={two_server_rounds.SESSION_KEY: link})
