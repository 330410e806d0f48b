"""Queries: the recommendations themselves.

The route is ``async`` on purpose: a query is ~1 ms of numpy work on in-memory state (the user's
history is cached), and running it on the event loop avoids the thread-pool hop and the GIL
convoy that 16 concurrent threads cause, which dominated p99 latency. Only a history-cache miss
touches the database, briefly blocking the loop.
"""

from __future__ import annotations

from fastapi import APIRouter

from lerna.recommender.api.deps import PrincipalDep, ServiceDep
from lerna.recommender.schemas import Query, QueryResult

router = APIRouter(tags=["queries"])


@router.post("/engines/{engine_id}/queries", response_model=QueryResult)
async def post_query(
    engine_id: str, query: Query, service: ServiceDep, who: PrincipalDep
) -> QueryResult:
    who.require_engine(engine_id)
    return QueryResult(result=service.query(engine_id, query))
