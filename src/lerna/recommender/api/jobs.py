"""Training jobs: start, inspect, cancel (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, status

from lerna.recommender.api.deps import AdminDep, JobsDep, ServiceDep
from lerna.recommender.api.engines import JobPublic
from lerna.recommender.errors import NotFoundError

router = APIRouter(tags=["jobs"])


@router.post(
    "/engines/{engine_id}/jobs", status_code=status.HTTP_202_ACCEPTED, response_model=JobPublic
)
def start_job(engine_id: str, jobs: JobsDep, _: AdminDep) -> JobPublic:
    return JobPublic.of(jobs.submit(engine_id))


@router.get("/engines/{engine_id}/jobs/{job_id}", response_model=JobPublic)
def get_job(engine_id: str, job_id: str, service: ServiceDep, _: AdminDep) -> JobPublic:
    job = service.store.get_job(job_id)
    if job is None or job.engine_id != engine_id:
        raise NotFoundError(f"no job {job_id!r} in engine {engine_id!r}")
    return JobPublic.of(job)


@router.delete("/engines/{engine_id}/jobs/{job_id}", response_model=JobPublic)
def cancel_job(engine_id: str, job_id: str, jobs: JobsDep, _: AdminDep) -> JobPublic:
    return JobPublic.of(jobs.cancel(engine_id, job_id))
