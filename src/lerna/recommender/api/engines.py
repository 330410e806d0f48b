"""Engines: create, list, inspect, reconfigure, delete (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from lerna.recommender.api.deps import AdminDep, ServiceDep
from lerna.recommender.config import EngineConfig
from lerna.recommender.store import JobInfo

router = APIRouter(tags=["engines"])


class CamelOut(BaseModel):
    """Harness answers in camelCase; Python code uses snake_case."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class EngineCreated(CamelOut):
    engine_id: str
    comment: str


class JobPublic(CamelOut):
    job_id: str
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    comment: str

    @classmethod
    def of(cls, job: JobInfo) -> JobPublic:
        return cls(job_id=job.id, status=job.status, created_at=job.created_at,
                   started_at=job.started_at, finished_at=job.finished_at, comment=job.message)  # fmt: skip


class EnginePublic(CamelOut):
    engine_id: str
    config: dict[str, Any]
    jobs: list[JobPublic]
    model: dict[str, float] | None


@router.post("/engines", status_code=status.HTTP_201_CREATED, response_model=EngineCreated)
def create_engine(config: EngineConfig, service: ServiceDep, _: AdminDep) -> EngineCreated:
    service.create_engine(config)
    return EngineCreated(engine_id=config.engine_id, comment="engine created")


@router.get("/engines", response_model=list[str])
def list_engines(service: ServiceDep, _: AdminDep) -> list[str]:
    return service.list_engines()


@router.get("/engines/{engine_id}", response_model=EnginePublic)
def get_engine(engine_id: str, service: ServiceDep, _: AdminDep) -> EnginePublic:
    state = service.state(engine_id)
    model = None
    if state.installed is not None:
        model = {"trainedAt": state.installed.model.trained_at, **state.installed.model.stats}
    return EnginePublic(
        engine_id=engine_id,
        config=state.config.model_dump(by_alias=True, mode="json"),
        jobs=[JobPublic.of(j) for j in service.store.jobs(engine_id)],
        model=model,
    )


@router.post("/engines/{engine_id}/configs", response_model=EngineCreated)
def update_engine(
    engine_id: str, config: EngineConfig, service: ServiceDep, _: AdminDep
) -> EngineCreated:
    service.update_engine(engine_id, config)
    return EngineCreated(
        engine_id=engine_id, comment="config updated; train to apply it to the model"
    )


@router.delete("/engines/{engine_id}", response_model=EngineCreated)
def delete_engine(engine_id: str, service: ServiceDep, _: AdminDep) -> EngineCreated:
    service.delete_engine(engine_id)
    return EngineCreated(engine_id=engine_id, comment="engine deleted with its data")
