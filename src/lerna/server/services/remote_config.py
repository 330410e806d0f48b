"""Remote config (the original's config server): what an app's SDK reads at start.

The app-wide values are cached (Redis or in-process) under the app id and dropped when the
customer changes them; the device's own switches (the blacklist) are applied on every read,
after the cache, so blocking a device takes effect on its next fetch.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from lerna.server.cache import Cache
from lerna.server.models import Device
from lerna.server.models_ops import RemoteConfig

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
ExtraValue = Annotated[str, Field(max_length=256)] | int | float | bool


class RemoteConfigValues(BaseModel):
    """Per-app settings; every field has a default, so an app with no row gets a usable config."""

    model_config = ConfigDict(extra="forbid")

    fl_api_url: AnyHttpUrl | None = None
    mpc_url: AnyHttpUrl | None = None
    recommender_url: AnyHttpUrl | None = None
    training_min_sessions: int = Field(10, ge=0, le=100_000)
    training_requires_unmetered: bool = True
    training_requires_charging: bool = False
    training_min_battery: Fraction = 0.2
    ab_test_fraction: Fraction = 0.0  # share of users kept on the non-personalized control
    confidence_threshold: Fraction = 0.0
    upload_error_logs: bool = True
    upload_debug_data: bool = False  # the app's opt-in; the user's opt-in is asked on the device
    upload_recommendation_events: bool = False
    refresh_seconds: int = Field(3600, ge=60, le=7 * 86400)
    extra: dict[Annotated[str, Field(max_length=64)], ExtraValue] = Field(
        default_factory=dict, max_length=64
    )


class DeviceRemoteConfig(RemoteConfigValues):
    """What one device receives: the app's values with that device's overrides applied."""

    revision: int
    training_enabled: bool
    predictions_enabled: bool


def _key(app_id: int) -> str:
    return f"remote-config:{app_id}"


def load(session: Session, cache: Cache, app_id: int, ttl: float) -> tuple[int, RemoteConfigValues]:
    hit = cache.get(_key(app_id))
    if hit is not None:
        data = json.loads(hit)
        return int(data["revision"]), RemoteConfigValues.model_validate(data["values"])
    row = session.get(RemoteConfig, app_id)
    revision = row.revision if row else 0
    values = RemoteConfigValues.model_validate(row.values if row else {})
    body = {"revision": revision, "values": values.model_dump(mode="json")}
    cache.set(_key(app_id), json.dumps(body).encode(), ttl)
    return revision, values


def save(session: Session, cache: Cache, app_id: int, values: RemoteConfigValues) -> int:
    row = session.get(RemoteConfig, app_id, with_for_update=True)
    data = values.model_dump(mode="json")
    if row is None:
        row = RemoteConfig(app_id=app_id, values=data, revision=1)
        session.add(row)
    else:
        row.values, row.revision = data, row.revision + 1
    session.flush()
    cache.delete(_key(app_id))  # replicas read the new values on their next miss
    return row.revision


def for_device(
    session: Session, cache: Cache, device: Device, ttl: float
) -> tuple[DeviceRemoteConfig, str]:
    """The device's config and its ETag (changes with the app revision and the blacklist)."""
    revision, values = load(session, cache, device.app_id, ttl)
    overrides: dict[str, object] = {
        "revision": revision,
        "training_enabled": not device.block_training,
        "predictions_enabled": not device.block_predictions,
    }
    if device.block_training:
        overrides["upload_debug_data"] = False
    config = DeviceRemoteConfig.model_validate({**values.model_dump(), **overrides})
    digest = hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]
    return config, f'"rc-{digest}"'
