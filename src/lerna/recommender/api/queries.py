"""Queries: the recommendations themselves, on the service's hottest path.

The route is ``async`` on purpose: a query is a fraction of a millisecond of numpy work on
in-memory state (the user's history is cached), and running it on the event loop avoids the
thread-pool hop and the GIL convoy that 16 concurrent threads cause. Only a history-cache miss
touches the database, briefly blocking the loop. For the same reason the route reads its body
and token itself instead of through FastAPI's dependency and body machinery, and returns bytes
serialised once by pydantic-core: together those cost more than the query. ``openapi_extra``
and ``response_model`` still document the schemas, and a bad body still answers 400.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from lerna.recommender.auth import authenticate
from lerna.recommender.schemas import Query, QueryResult
from lerna.recommender.service import RecommenderService

router = APIRouter(tags=["queries"])
_QUERY_SCHEMA = Query.model_json_schema(by_alias=True)


@router.post(
    "/engines/{engine_id}/queries",
    response_model=QueryResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _QUERY_SCHEMA}},
        }
    },
)
async def post_query(engine_id: str, request: Request) -> Response:
    who = authenticate(request.app.state.settings, request.headers.get("authorization"))
    who.require_engine(engine_id)
    try:
        query = Query.model_validate_json(await request.body() or b"{}")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False), body=None) from exc
    service: RecommenderService = request.app.state.service
    answer = QueryResult(result=service.query(engine_id, query))
    return Response(answer.model_dump_json(), media_type="application/json")
