"""Dependency aliases, so that a route's signature reads as the rule it enforces.

They are ``async`` because they do no I/O: a sync dependency costs a thread-pool hop per
request, which on the query path cost more than the query itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from lerna.recommender.auth import Principal, authenticate
from lerna.recommender.jobs import JobManager
from lerna.recommender.service import RecommenderService


async def _service(request: Request) -> RecommenderService:
    service: RecommenderService = request.app.state.service
    return service


async def _jobs(request: Request) -> JobManager:
    jobs: JobManager = request.app.state.jobs
    return jobs


async def _principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    return authenticate(request.app.state.settings, authorization)


async def _admin(who: Annotated[Principal, Depends(_principal)]) -> Principal:
    who.require_admin()
    return who


ServiceDep = Annotated[RecommenderService, Depends(_service)]
JobsDep = Annotated[JobManager, Depends(_jobs)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
AdminDep = Annotated[Principal, Depends(_admin)]
