"""Apps, tokens, ML tasks, versions, rounds, devices and stats of the logged-in customer."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from lerna.server.deps import CurrentCustomer, OwnedApp, SessionDep
from lerna.server.models import MLTask, Round
from lerna.server.schemas import (
    AppCreate,
    AppPublic,
    AppStats,
    AppUpdate,
    AppWithToken,
    BlacklistUpdate,
    DevicePublic,
    PrivacySpentPublic,
    RoundPublic,
    TaskCreate,
    TaskPublic,
    TaskUpdate,
    VersionPublic,
    WeekActivity,
)
from lerna.server.services import apps, devices, stats, tasks
from lerna.server.services.participants import aware

router = APIRouter(prefix="/api/apps", tags=["apps"])


def _app_with_token(app: object, token: str) -> AppWithToken:
    return AppWithToken.model_validate(
        {**AppPublic.model_validate(app).model_dump(), "token": token}
    )


@router.post("", response_model=AppWithToken, status_code=201)
def create_app(data: AppCreate, customer: CurrentCustomer, session: SessionDep) -> AppWithToken:
    app, token = apps.create(session, customer.id, data.name)
    return _app_with_token(app, token)


@router.get("", response_model=list[AppPublic])
def list_apps(customer: CurrentCustomer, session: SessionDep) -> list[AppPublic]:
    return [AppPublic.model_validate(a) for a in apps.list_owned(session, customer.id)]


@router.get("/{app_id}", response_model=AppPublic)
def get_app(app: OwnedApp) -> AppPublic:
    return AppPublic.model_validate(app)


@router.patch("/{app_id}", response_model=AppPublic)
def rename_app(data: AppUpdate, app: OwnedApp) -> AppPublic:
    app.name = data.name
    return AppPublic.model_validate(app)


@router.delete("/{app_id}", status_code=204)
def delete_app(app: OwnedApp, session: SessionDep) -> None:
    session.delete(app)


@router.post("/{app_id}/token", response_model=AppWithToken)
def rotate_token(app: OwnedApp) -> AppWithToken:
    return _app_with_token(app, apps.rotate_token(app))


@router.get("/{app_id}/stats", response_model=AppStats)
def app_stats(app: OwnedApp, session: SessionDep) -> AppStats:
    return stats.app_stats(session, app.id)


@router.get("/{app_id}/activity", response_model=list[WeekActivity])
def weekly_activity(app: OwnedApp, session: SessionDep, weeks: int = 12) -> list[WeekActivity]:
    """Active devices per week, for the overview chart."""
    return stats.weekly_active(session, app.id, min(max(weeks, 1), 104))


def _task_public(task: MLTask, session: Session | None = None) -> TaskPublic:
    data = {
        c: getattr(task, c)
        for c in TaskPublic.model_fields
        if c not in ("num_items", "privacy_spent")
    }
    spent = tasks.privacy_spent(session, task) if session is not None else None
    return TaskPublic.model_validate({**data, "num_items": task.num_items, "privacy_spent": spent})


@router.post("/{app_id}/tasks", response_model=TaskPublic, status_code=201)
def create_task(data: TaskCreate, app: OwnedApp, session: SessionDep) -> TaskPublic:
    return _task_public(tasks.create(session, app, data), session)


@router.get("/{app_id}/tasks", response_model=list[TaskPublic])
def list_tasks(app: OwnedApp, session: SessionDep) -> list[TaskPublic]:
    return [_task_public(t, session) for t in tasks.list_in_app(session, app.id)]


@router.get("/{app_id}/tasks/{task_id}", response_model=TaskPublic)
def get_task(task_id: int, app: OwnedApp, session: SessionDep) -> TaskPublic:
    return _task_public(tasks.get_in_app(session, app.id, task_id), session)


@router.patch("/{app_id}/tasks/{task_id}", response_model=TaskPublic)
def update_task(task_id: int, data: TaskUpdate, app: OwnedApp, session: SessionDep) -> TaskPublic:
    return _task_public(tasks.update(tasks.get_in_app(session, app.id, task_id), data), session)


@router.get("/{app_id}/tasks/{task_id}/privacy", response_model=PrivacySpentPublic)
def privacy_spent(task_id: int, app: OwnedApp, session: SessionDep) -> PrivacySpentPublic:
    """Privacy spent so far, (epsilon, delta) from the accountant, against the budget."""
    return tasks.privacy_spent(session, tasks.get_in_app(session, app.id, task_id))


@router.get("/{app_id}/tasks/{task_id}/versions", response_model=list[VersionPublic])
def list_versions(task_id: int, app: OwnedApp, session: SessionDep) -> list[VersionPublic]:
    task = tasks.get_in_app(session, app.id, task_id)
    return [
        VersionPublic(
            version=v.version,
            round_id=v.round_id,
            participants=v.participants,
            num_examples=v.num_examples,
            metrics={k: s / v.metrics_count for k, s in v.metrics_sum.items()}
            if v.metrics_count
            else {},
            reports=v.metrics_count,
            epsilon=v.epsilon,
            delta=v.delta,
            created_at=v.created_at,
        )
        for v in tasks.versions(session, task.id)
    ]


@router.get(
    "/{app_id}/tasks/{task_id}/versions/{version}/weights",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "weights archive (.npz)"}
    },
)
def export_weights(task_id: int, version: int, app: OwnedApp, session: SessionDep) -> Response:
    task = tasks.get_in_app(session, app.id, task_id)
    row = tasks.get_version(session, task.id, version)
    filename = f"{task.name}-v{version}.npz"
    return Response(
        row.archive,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/{app_id}/tasks/{task_id}/rounds", response_model=list[RoundPublic])
def list_rounds(
    task_id: int, app: OwnedApp, session: SessionDep, limit: int = 100
) -> list[RoundPublic]:
    from sqlalchemy import select

    task = tasks.get_in_app(session, app.id, task_id)
    rows = session.scalars(
        select(Round)
        .where(Round.task_id == task.id)
        .order_by(Round.number.desc())
        .limit(min(max(limit, 1), 1000))
    )
    return [
        RoundPublic.model_validate(
            {
                **{
                    c: getattr(r, c)
                    for c in RoundPublic.model_fields
                    if c not in ("dropouts", "seconds")
                },
                "dropouts": r.selected - r.uploads if r.state != "open" else 0,
                "seconds": (aware(r.closed_at) - aware(r.opened_at)).total_seconds()
                if r.closed_at
                else None,
            }
        )
        for r in rows
    ]


@router.get("/{app_id}/devices", response_model=list[DevicePublic])
def search_devices(
    app: OwnedApp, session: SessionDep, q: str = "", limit: int = 50
) -> list[DevicePublic]:
    return [
        DevicePublic.model_validate(d)
        for d in devices.search(session, app.id, q[:128], min(max(limit, 1), 500))
    ]


@router.put("/{app_id}/devices/{device_id}/blacklist", response_model=DevicePublic)
def blacklist_device(
    device_id: int, data: BlacklistUpdate, app: OwnedApp, session: SessionDep
) -> DevicePublic:
    device = devices.get_in_app(session, app.id, device_id)
    device.block_training, device.block_predictions = data.block_training, data.block_predictions
    return DevicePublic.model_validate(device)
