"""Item catalogue: every known item with its properties, indexed for rule filters.

``$set`` must take effect at once, without retraining, so properties live here (mirrored in the
store) rather than in the model. The catalogue is append-only in its item positions, which lets
a model's item array map to fixed catalogue positions; property changes only bump ``version``,
which invalidates the per-property arrays built lazily for date ranges and user-defined ranks.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

JsonValue = Any


def canonical(value: JsonValue) -> str:
    """One spelling per value so that rule ``"5"``, ``5`` and ``5.0`` all match property ``5``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def as_number(value: JsonValue) -> float | None:
    """Numbers as they are, ISO-8601 strings as epoch seconds (naive means UTC), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-":
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


def _values_of(value: JsonValue) -> set[str]:
    if isinstance(value, list):
        return {canonical(v) for v in value if not isinstance(v, dict | list)}
    if isinstance(value, dict) or value is None:
        return set()
    return {canonical(value)}


class ItemCatalog:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._props: dict[int, dict[str, JsonValue]] = {}
        self._inverted: dict[str, dict[str, set[int]]] = {}
        self._cache: dict[str, tuple[int, NDArray[np.float64]]] = {}
        self._id_rank: tuple[int, NDArray[np.int64]] | None = None
        self.version = 0

    def __len__(self) -> int:
        return len(self._ids)

    def item_id(self, pos: int) -> str:
        return self._ids[pos]

    def positions(self, item_ids: Iterable[str]) -> NDArray[np.int64]:
        """Catalogue positions of the items, adding the unknown ones."""
        with self._lock:
            out = []
            for item in item_ids:
                pos = self._index.get(item)
                if pos is None:
                    pos = len(self._ids)
                    self._ids.append(item)
                    self._index[item] = pos
                    self.version += 1
                out.append(pos)
            return np.asarray(out, dtype=np.int64)

    def known(self, item_ids: Iterable[str]) -> NDArray[np.int64]:
        """Positions of the items already known; unknown ones are skipped."""
        return np.asarray([p for i in item_ids if (p := self._index.get(i)) is not None], np.int64)

    def properties(self, pos: int) -> dict[str, JsonValue]:
        with self._lock:
            return dict(self._props.get(pos, {}))

    def _unindex(self, pos: int, name: str) -> None:
        old = self._props.get(pos, {}).get(name)
        for v in _values_of(old):
            self._inverted.get(name, {}).get(v, set()).discard(pos)

    def set_properties(self, item: str, props: Mapping[str, JsonValue]) -> None:
        with self._lock:
            pos = int(self.positions([item])[0])
            current = self._props.setdefault(pos, {})
            for name, value in props.items():
                self._unindex(pos, name)
                current[name] = value
                for v in _values_of(value):
                    self._inverted.setdefault(name, {}).setdefault(v, set()).add(pos)
            self.version += 1

    def unset_properties(self, item: str, names: Iterable[str]) -> None:
        with self._lock:
            pos = self._index.get(item)
            if pos is None:
                return
            for name in names:
                self._unindex(pos, name)
                self._props.get(pos, {}).pop(name, None)
            self.version += 1

    def delete_properties(self, item: str) -> None:
        with self._lock:
            pos = self._index.get(item)
            if pos is not None:
                self.unset_properties(item, list(self._props.get(pos, {})))

    def matches(self, name: str, values: Iterable[JsonValue]) -> NDArray[np.bool_]:
        """Items whose property ``name`` holds any of ``values`` (OR within a rule)."""
        with self._lock:
            mask = np.zeros(len(self._ids), dtype=bool)
            index = self._inverted.get(name, {})
            for v in values:
                hits = index.get(canonical(v))
                if hits:
                    mask[np.fromiter(hits, dtype=np.int64, count=len(hits))] = True
            return mask

    def numeric(self, name: str) -> NDArray[np.float64]:
        """Property ``name`` as a number per item (dates as epoch seconds); NaN where absent."""
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and cached[0] == self.version:
                return cached[1]
            out = np.full(len(self._ids), np.nan)
            for pos, props in self._props.items():
                if name in props and (num := as_number(props[name])) is not None:
                    out[pos] = num
            self._cache[name] = (self.version, out)
            return out

    def id_rank(self) -> NDArray[np.int64]:
        """Rank of each item's id in sorted order: the last, deterministic tie-breaker."""
        with self._lock:
            if self._id_rank is None or self._id_rank[0] != len(self._ids):
                ranks = np.empty(len(self._ids), dtype=np.int64)
                ranks[np.argsort(np.asarray(self._ids, dtype=np.str_), kind="stable")] = np.arange(
                    len(self._ids)
                )
                self._id_rank = (len(self._ids), ranks)
            return self._id_rank[1]
