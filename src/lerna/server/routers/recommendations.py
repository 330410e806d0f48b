"""Server-side recommendations: customers link an app's ML task to an engine, devices get
candidates and (where the app allows it) send recommendation events.

Routes are ``async`` because their work is an HTTP call to the recommendation service (through
an in-process ASGI transport in the embedded server, which needs the event loop).
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from lerna.core.protocol import CandidatePublic, CandidatesPublic, RecommendationEvents
from lerna.server.deps import CurrentDevice, OwnedApp, SessionDep
from lerna.server.schemas import In, Out
from lerna.server.services import recommendations as recs
from lerna.server.services import tasks

router = APIRouter(tags=["recommendations"])
ENGINE_ID = r"^[A-Za-z0-9_\-.]{1,64}$"


class RecommenderLinkUpdate(In):
    engine_id: str = Field(pattern=ENGINE_ID)
    forward_events: bool = False
    task_id: int | None = None  # needed when the app has several ML tasks
    algorithm: dict[str, Any] | None = None  # UR "algorithm" JSON, used if the engine is created


class RecommenderLinkPublic(Out):
    app_id: int
    task_id: int
    engine_id: str
    forward_events: bool
    engine_created: bool = False
    items_forwarded: int = 0


class TrainingJobPublic(Out):
    job_id: str
    status: str


class RecommendationEventsAccepted(Out):
    accepted: int


def _client(request: Request) -> recs.RecommenderClient:
    transport: httpx.AsyncBaseTransport | None = getattr(
        request.app.state, "recommender_transport", None
    )
    return recs.client_for(request.app.state.settings, transport)


def _public(link: Any, created: bool = False, forwarded: int = 0) -> RecommenderLinkPublic:
    return RecommenderLinkPublic(
        app_id=link.app_id, task_id=link.task_id, engine_id=link.engine_id,
        forward_events=link.forward_events, engine_created=created, items_forwarded=forwarded,
    )  # fmt: skip


@router.put("/api/apps/{app_id}/recommender", response_model=RecommenderLinkPublic)
async def link_engine(
    data: RecommenderLinkUpdate, app: OwnedApp, session: SessionDep, request: Request
) -> RecommenderLinkPublic:
    """Link (or relink) the app's task to an engine, creating it if missing, and forward the
    task's item metadata as ``$set`` events. Nothing is saved if the recommender refuses."""
    rec = _client(request)
    link, task = recs.put_link(session, app, data.task_id, data.engine_id, data.forward_events)
    created = await recs.ensure_engine(rec, link.engine_id, data.algorithm)
    events = recs.catalog_events(task)
    await recs.send_events(rec, link.engine_id, events)
    return _public(link, created, len(events))


@router.get("/api/apps/{app_id}/recommender", response_model=RecommenderLinkPublic)
def get_link(app: OwnedApp, session: SessionDep) -> RecommenderLinkPublic:
    return _public(recs.get_link(session, app.id))


@router.delete("/api/apps/{app_id}/recommender", status_code=204)
def unlink(app: OwnedApp, session: SessionDep) -> Response:
    session.delete(recs.get_link(session, app.id))
    return Response(status_code=204)


@router.post(
    "/api/apps/{app_id}/recommender/train", response_model=TrainingJobPublic, status_code=202
)
async def train(app: OwnedApp, session: SessionDep, request: Request) -> TrainingJobPublic:
    rec = _client(request)
    link = recs.get_link(session, app.id)
    job = await recs.start_training(rec, link.engine_id)
    return TrainingJobPublic(job_id=job["jobId"], status=job["status"])


@router.get("/v1/device/tasks/{task_id}/candidates", response_model=CandidatesPublic)
async def device_candidates(
    task_id: int,
    device: CurrentDevice,
    session: SessionDep,
    request: Request,
    num: Annotated[int, Query(ge=1, le=200)] = 20,
) -> CandidatesPublic:
    rec = _client(request)
    link = recs.device_link(session, device, task_id)
    items, personalized = await recs.candidates(rec, link, device, num)
    return CandidatesPublic(
        items=[CandidatePublic(item=i, score=s) for i, s in items], personalized=personalized
    )


@router.post(
    "/v1/device/tasks/{task_id}/recommendation-events",
    response_model=RecommendationEventsAccepted,
    status_code=202,
)
async def device_events(
    task_id: int,
    data: RecommendationEvents,
    device: CurrentDevice,
    session: SessionDep,
    request: Request,
) -> RecommendationEventsAccepted:
    rec = _client(request)
    link = recs.device_link(session, device, task_id)
    recs.check_event_items(
        tasks.get_in_app(session, device.app_id, task_id), [e.item for e in data.events]
    )
    events = recs.device_events(link, device, [(e.event, e.item, e.time) for e in data.events])
    await recs.send_events(rec, link.engine_id, events)
    return RecommendationEventsAccepted(accepted=len(events))
