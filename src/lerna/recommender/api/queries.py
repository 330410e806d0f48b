"""Queries: the recommendations themselves."""

from __future__ import annotations

from fastapi import APIRouter

from lerna.recommender.api.deps import PrincipalDep, ServiceDep
from lerna.recommender.schemas import Query, QueryResult

router = APIRouter(tags=["queries"])


@router.post("/engines/{engine_id}/queries", response_model=QueryResult)
def post_query(engine_id: str, query: Query, service: ServiceDep, who: PrincipalDep) -> QueryResult:
    who.require_engine(engine_id)
    return QueryResult(result=service.query(engine_id, query))
