"""Wire schemas of the Harness REST API: events, queries and their answers.

Harness's JSON is camelCase; aliases keep it so while Python reads snake_case. Unknown keys are
ignored rather than refused, as Harness did, so that existing clients keep working.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

RESERVED_EVENTS = ("$set", "$unset", "$delete")
Scalar = str | int | float | bool


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class Event(_Camel):
    event: str = Field(min_length=1, max_length=128)
    entity_type: str = Field(min_length=1, max_length=64)
    entity_id: str = Field(min_length=1, max_length=256)
    target_entity_type: str | None = Field(default=None, max_length=64)
    target_entity_id: str | None = Field(default=None, min_length=1, max_length=256)
    properties: dict[str, Any] = Field(default_factory=dict)
    event_time: datetime | None = None

    _utc_time = field_validator("event_time")(_utc)

    @model_validator(mode="after")
    def _reserved_events_are_well_formed(self) -> Event:
        if self.event == "$unset" and not self.properties:
            raise ValueError("$unset needs the property names to remove in 'properties'")
        return self


class Rule(_Camel):
    name: str = Field(min_length=1)
    values: list[Scalar] = Field(min_length=1)
    bias: float


class DateRange(_Camel):
    name: str = Field(min_length=1)
    before: datetime | None = None
    after: datetime | None = None

    _utc_before = field_validator("before")(_utc)
    _utc_after = field_validator("after")(_utc)

    @model_validator(mode="after")
    def _has_a_bound(self) -> DateRange:
        if self.before is None and self.after is None:
            raise ValueError("dateRange needs 'before', 'after' or both")
        return self


class Query(_Camel):
    user: str | None = None
    user_bias: float = 1.0
    item: str | None = None
    item_bias: float = 1.0
    item_set: list[str] | None = None
    rules: list[Rule] = Field(default_factory=list)
    date_range: DateRange | None = None
    current_date: datetime | None = None
    blacklist_items: list[str] = Field(default_factory=list)
    return_self: bool | None = None
    num: int | None = Field(default=None, ge=1, le=1000)
    from_: int = Field(default=0, ge=0, le=100_000, alias="from")

    _utc_current = field_validator("current_date")(_utc)


class ResultItem(BaseModel):
    item: str
    score: float
    props: dict[str, Any] = Field(default_factory=dict)


class QueryResult(BaseModel):
    result: list[ResultItem]
