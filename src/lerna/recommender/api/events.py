"""Events: one Harness event or a JSON array of them, and bulk JSON-lines import."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, status
from pydantic import TypeAdapter, ValidationError

from lerna.recommender.api.deps import AdminDep, PrincipalDep, ServiceDep
from lerna.recommender.api.engines import CamelOut
from lerna.recommender.errors import InvalidInputError
from lerna.recommender.schemas import Event

router = APIRouter(tags=["events"])
MAX_BATCH = 10_000
_EVENT = TypeAdapter(Event)


class EventsAccepted(CamelOut):
    accepted: int
    ignored: int
    comment: str


@router.post(
    "/engines/{engine_id}/events",
    status_code=status.HTTP_201_CREATED,
    response_model=EventsAccepted,
)
def post_events(
    engine_id: str, body: Event | list[Event], service: ServiceDep, who: PrincipalDep
) -> EventsAccepted:
    who.require_engine(engine_id)
    events = body if isinstance(body, list) else [body]
    if len(events) > MAX_BATCH:
        raise InvalidInputError(f"at most {MAX_BATCH} events per request; use the import endpoint")
    done = service.ingest(engine_id, events)
    return EventsAccepted(accepted=done.accepted, ignored=done.ignored, comment="events stored")


@router.post(
    "/engines/{engine_id}/imports",
    status_code=status.HTTP_201_CREATED,
    response_model=EventsAccepted,
    openapi_extra={
        "requestBody": {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}
    },
)
async def import_events(
    engine_id: str, request: Request, service: ServiceDep, _: AdminDep
) -> EventsAccepted:
    """JSON lines, one Harness event per line; every line is checked before any is written."""
    limit = request.app.state.settings.max_bulk_lines
    events: list[Event] = []
    lineno = 0
    body = await request.body()
    for lineno, line in enumerate(body.decode("utf-8", errors="strict").splitlines(), 1):
        if not line.strip():
            continue
        if len(events) >= limit:
            raise InvalidInputError(f"more than {limit} events in one import")
        try:
            events.append(_EVENT.validate_python(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"line {lineno}: not JSON ({exc.msg})") from exc
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise InvalidInputError(f"line {lineno}: {where}: {err['msg']}") from exc
    done = service.ingest(engine_id, events)
    return EventsAccepted(accepted=done.accepted, ignored=done.ignored, comment="import stored")
