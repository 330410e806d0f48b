"""Engine configuration: the Harness / Universal Recommender JSON, validated.

Field names follow UR's camelCase JSON so that an existing ``engine.json`` loads unchanged;
keys UR needed for Spark and Elasticsearch (``sparkConf``, ``engineFactory``, ...) are accepted
and ignored, because refusing them would break every migrated config for no benefit.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

_ENGINE_ID = re.compile(r"^[A-Za-z0-9_\-.]{1,64}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_UNIT_SECONDS = {
    "": 1.0, "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
}  # fmt: skip


def parse_duration(value: str | float | int) -> float:
    """Seconds in a UR duration such as ``"3 days"`` or ``"12 hours"`` (a bare number is seconds)."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _UNIT_SECONDS:
            raise ValueError(f"duration {value!r} is not '<number> <unit>' with unit in s/m/h/d/w")
        seconds = float(match.group(1)) * _UNIT_SECONDS[unit]
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be positive")
    return seconds


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class IndicatorConfig(_Camel):
    """One kind of user behaviour; the first indicator of an engine is the conversion."""

    name: str = Field(min_length=1, max_length=128)
    aliases: list[str] = Field(default_factory=list)
    max_correlators_per_item: int | None = Field(default=None, ge=1, le=10_000)
    min_llr: float | None = Field(default=None, ge=0.0)
    weight: float = Field(default=1.0, ge=-100.0, le=100.0)
    """Multiplies this indicator's correlator weights; negative makes it evidence against."""


class RankingConfig(_Camel):
    """A backfill ranking; the first one breaks ties and fills short results."""

    name: str = Field(default="popRank", min_length=1)
    type: Literal["popular", "trending", "hot", "random", "userDefined"] = "popular"
    event_names: list[str] | None = None
    duration: str | float | None = None
    offset_date: str | None = None

    @field_validator("duration")
    @classmethod
    def _duration_parses(cls, value: str | float | None) -> str | float | None:
        if value is not None:
            parse_duration(value)
        return value


class ScoringConfig(_Camel):
    """How correlator weights become query scores; every departure from UR is off by default.

    UR sums raw LLR weights. On rating data that favours items correlated with everything (the
    popular ones, whose LLR is large against anything) and users whose history items have many
    strong correlators. ``normalizeHistory`` gives every history item one vote, split over its
    correlators in proportion to LLR; ``targetDamping`` divides each item's incoming weights by
    their total to that power (0 off, 0.5 a square root), as Jaccard similarity does in SAR;
    ``popularityWeight`` adds ``w * ln(1 + primary events)`` of the item, a prior that matters
    for users with little history. See docs/recommender.md for the measured effect.
    """

    normalize_history: bool = False
    target_damping: float = Field(default=0.0, ge=0.0, le=2.0)
    popularity_weight: float = Field(default=0.0, ge=0.0, le=100.0)


class AlgorithmConfig(_Camel):
    indicators: list[IndicatorConfig] = Field(min_length=1)
    num: int = Field(default=20, ge=1, le=10_000)
    blacklist_indicators: list[str] | None = None
    rankings: list[RankingConfig] = Field(default_factory=lambda: [RankingConfig()])
    available_date_name: str | None = None
    expire_date_name: str | None = None
    date_name: str | None = None
    max_events_per_event_type: int = Field(default=500, ge=1)
    max_events_per_item: int = Field(default=5000, ge=1)
    max_correlators_per_item: int = Field(default=50, ge=1, le=10_000)
    min_llr: float = Field(default=0.0, ge=0.0)
    max_query_events: int = Field(default=100, ge=1, le=10_000)
    return_self: bool = False
    seed: int = 0
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)

    @model_validator(mode="after")
    def _names_unique(self) -> AlgorithmConfig:
        seen: set[str] = set()
        for ind in self.indicators:
            for name in (ind.name, *ind.aliases):
                if name in seen:
                    raise ValueError(f"event name {name!r} is used by two indicators")
                seen.add(name)
        known = {ind.name for ind in self.indicators}
        for name in self.blacklist_indicators or []:
            if name not in known:
                raise ValueError(f"blacklistIndicators names {name!r}, which is no indicator")
        return self

    @property
    def blacklist(self) -> list[str]:
        """Indicators whose items a user never gets back: UR's default is the primary one."""
        if self.blacklist_indicators is None:
            return [self.indicators[0].name]
        return list(self.blacklist_indicators)

    def indicator_of(self) -> dict[str, str]:
        """Map from every accepted event name (names and aliases) to its indicator."""
        out: dict[str, str] = {}
        for ind in self.indicators:
            out[ind.name] = ind.name
            for alias in ind.aliases:
                out[alias] = ind.name
        return out


class DatasetConfig(_Camel):
    ttl: str | float | None = None

    @field_validator("ttl")
    @classmethod
    def _ttl_parses(cls, value: str | float | None) -> str | float | None:
        if value is not None:
            parse_duration(value)
        return value


class EngineConfig(_Camel):
    """The whole JSON an operator posts to ``/engines``."""

    engine_id: str
    algorithm: AlgorithmConfig
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)

    @field_validator("engine_id")
    @classmethod
    def _id_is_safe(cls, value: str) -> str:
        if not _ENGINE_ID.match(value):
            raise ValueError("engineId must be 1-64 characters of letters, digits, '_', '-', '.'")
        return value
