"""Queries: the recommendations themselves (the schema; see ``fastpath`` for why the work
happens below FastAPI).

Requests normally never reach this route: ``QueryFastPath`` answers them first. It stays so the
OpenAPI schema documents the endpoint, and it answers exactly as the fast path does.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from lerna.recommender.api.fastpath import answer_query
from lerna.recommender.schemas import Query, QueryResult

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
    status, body = answer_query(
        request.app.state, engine_id, request.headers.get("authorization"), await request.body()
    )
    return Response(body, status_code=status, media_type="application/json")
