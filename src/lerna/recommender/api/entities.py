"""GDPR: export and erase what an engine holds about one user (admin only).

Erasure removes the user's events at once and from every later query; the current model still
holds co-occurrence counts the user contributed to until the next training job replaces it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from lerna.recommender.api.deps import AdminDep, ServiceDep
from lerna.recommender.api.engines import CamelOut

router = APIRouter(tags=["entities"])


class EntityData(CamelOut):
    entity_id: str
    events: list[dict[str, Any]]


class EntityDeleted(CamelOut):
    entity_id: str
    comment: str


@router.get("/engines/{engine_id}/entities/{user_id}", response_model=EntityData)
def export_user(engine_id: str, user_id: str, service: ServiceDep, _: AdminDep) -> EntityData:
    return EntityData(entity_id=user_id, events=service.user_data(engine_id, user_id))


@router.delete("/engines/{engine_id}/entities/{user_id}", response_model=EntityDeleted)
def erase_user(engine_id: str, user_id: str, service: ServiceDep, _: AdminDep) -> EntityDeleted:
    service.forget_user(engine_id, user_id)
    return EntityDeleted(
        entity_id=user_id, comment="events erased; the next training job drops them from the model"
    )
