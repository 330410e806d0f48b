"""ML tasks: configuration, catalog, and model versions."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from lerna.core.dp import PrivacyAccountant, PrivacyConfig
from lerna.core.features import FeatureError, FeatureSchema, ItemCatalog
from lerna.core.models import MODEL_TYPES, ModelSpec, create_model
from lerna.core.secure_update import accounting_noise_multiplier
from lerna.core.weights import ArraySpec, Manifest, dump_archive, layout_of, load_archive
from lerna.server.errors import Conflict, NotFound, Unprocessable
from lerna.server.models import App, MLTask, ModelVersion
from lerna.server.schemas import PrivacySpentPublic, TaskCreate, TaskUpdate


def model_archive(model_type: str, version: int, weights: dict[str, np.ndarray]) -> bytes:
    manifest = Manifest(kind="model", model=model_type, version=version, arrays=layout_of(weights))
    return dump_archive(manifest, weights)


def _validate_hyper(model_type: str, hyper: dict[str, Any]) -> dict[str, Any]:
    if model_type not in MODEL_TYPES:
        raise Unprocessable(
            f"unknown model_type {model_type!r}; known: {sorted(MODEL_TYPES)}", "bad_model_type"
        )
    try:
        return MODEL_TYPES[model_type].Hyper.model_validate(hyper).model_dump()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise Unprocessable(f"hyper.{where}: {err['msg']}", "bad_hyper") from None


def spec_of(task: MLTask) -> ModelSpec:
    schema = FeatureSchema.model_validate(task.feature_schema)
    return ModelSpec(schema.context_size, schema.items.size, task.num_items)


def create(session: Session, app: App, data: TaskCreate) -> MLTask:
    if session.scalar(select(MLTask.id).where(MLTask.app_id == app.id, MLTask.name == data.name)):
        raise Conflict(f"app already has a task named {data.name!r}", "task_exists")
    hyper = _validate_hyper(data.model_type, data.hyper)
    try:
        catalog = ItemCatalog.build(data.feature_schema.items, data.catalog.items)
    except FeatureError as exc:
        raise Unprocessable(f"catalog: {exc}", "bad_catalog") from None
    task = MLTask(
        app_id=app.id,
        name=data.name,
        model_type=data.model_type,
        hyper=hyper,
        feature_schema=data.feature_schema.model_dump(mode="json"),
        num_items=len(catalog),
        catalog={
            "item_ids": list(catalog.item_ids),
            "metadata": [data.catalog.items[i] for i in catalog.item_ids],
        },
        cohort_size=data.cohort_size,
        min_participants=data.min_participants,
        selection_seconds=data.selection_seconds,
        upload_seconds=data.upload_seconds,
        local_epochs=data.local_epochs,
        server_learning_rate=data.server_learning_rate,
        stage_seconds=data.stage_seconds,
        privacy=data.privacy.model_dump(),
        current_version=0,
    )
    session.add(task)
    session.flush()
    model = create_model(task.model_type, spec_of(task), hyper, seed=task.id)
    session.add(
        ModelVersion(
            task_id=task.id,
            version=0,
            archive=model_archive(task.model_type, 0, model.global_weights()),
        )
    )
    return task


def update(task: MLTask, data: TaskUpdate) -> MLTask:
    changes = data.model_dump(exclude_none=True)
    if data.privacy is not None:  # the whole section, explicit nulls included (no budget)
        changes["privacy"] = data.privacy.model_dump()
    if "hyper" in changes:
        changes["hyper"] = _validate_hyper(task.model_type, changes["hyper"])
    cohort = changes.get("cohort_size", task.cohort_size)
    minimum = changes.get("min_participants", task.min_participants)
    if minimum > cohort:
        raise Unprocessable("min_participants cannot exceed cohort_size", "bad_config")
    privacy = privacy_of(task) if data.privacy is None else data.privacy
    if privacy.mode != "none" and privacy.threshold > minimum:
        raise Unprocessable("privacy.threshold cannot exceed min_participants", "bad_config")
    for key, value in changes.items():
        setattr(task, key, value)
    return task


def get_in_app(session: Session, app_id: int, task_id: int) -> MLTask:
    task = session.get(MLTask, task_id)
    if task is None or task.app_id != app_id:
        raise NotFound(f"task {task_id} not found")
    return task


def list_in_app(session: Session, app_id: int) -> list[MLTask]:
    return list(session.scalars(select(MLTask).where(MLTask.app_id == app_id).order_by(MLTask.id)))


def get_version(session: Session, task_id: int, version: int) -> ModelVersion:
    row = session.scalar(
        select(ModelVersion).where(ModelVersion.task_id == task_id, ModelVersion.version == version)
    )
    if row is None:
        raise NotFound(f"model version {version} not found")
    return row


def versions(session: Session, task_id: int) -> list[ModelVersion]:
    stmt = (
        select(ModelVersion).where(ModelVersion.task_id == task_id).order_by(ModelVersion.version)
    )
    return list(session.scalars(stmt))


def load_weights(row: ModelVersion) -> tuple[Manifest, dict[str, np.ndarray]]:
    return load_archive(row.archive)


_layouts: dict[tuple[int, float, int], list[ArraySpec]] = {}


def layout(session: Session, task: MLTask, version: int) -> list[ArraySpec]:
    """Array layout of a version (immutable once written, so cached per process). The key
    carries the task's creation time: ids repeat when a process meets a re-created database."""
    key = (task.id, task.created_at.timestamp(), version)
    if key not in _layouts:
        _layouts[key] = load_weights(get_version(session, task.id, version))[0].arrays
    return _layouts[key]


def num_params(session: Session, task: MLTask) -> int:
    return sum(spec.size for spec in layout(session, task, task.current_version))


def privacy_of(task: MLTask) -> PrivacyConfig:
    return (
        PrivacyConfig.model_validate(task.privacy)
        if task.privacy
        else PrivacyConfig(mode="none", noise_multiplier=0, epsilon_budget=None)
    )


def sampling_rate(session: Session, task: MLTask) -> float:
    """Expected cohort over the app's enrolled population (the accountant's q)."""
    from sqlalchemy import func

    from lerna.server.models import Device

    population = (
        session.scalar(select(func.count(Device.id)).where(Device.app_id == task.app_id)) or 0
    )
    return min(1.0, task.cohort_size / max(population, 1))


def privacy_spent(session: Session, task: MLTask, rounds: int | None = None) -> PrivacySpentPublic:
    privacy = privacy_of(task)
    done = task.dp_rounds if rounds is None else rounds
    if not privacy.dp_enabled or privacy.mode == "none":
        return PrivacySpentPublic(
            mode=privacy.mode,
            epsilon=None,
            delta=privacy.target_delta,
            budget=None,
            rounds=done,
            exhausted=False,
        )
    # the multiplier the lattice leaves after rounding (and, in SecAgg+, after splitting the
    # noise into discrete shares); the cohort size is the most parties a round is sized for
    accountant = PrivacyAccountant(
        accounting_noise_multiplier(privacy, num_params(session, task), task.cohort_size),
        sampling_rate(session, task),
        privacy.target_delta,
    )
    epsilon = accountant.epsilon(done)
    exhausted = (
        privacy.epsilon_budget is not None and accountant.epsilon(done + 1) > privacy.epsilon_budget
    )
    return PrivacySpentPublic(
        mode=privacy.mode,
        epsilon=epsilon,
        delta=privacy.target_delta,
        budget=privacy.epsilon_budget,
        rounds=done,
        exhausted=exhausted,
    )
