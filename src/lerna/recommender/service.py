"""The recommendation service's domain layer: engines, events, queries, training, GDPR.

Routers call only this. Every write goes to the store first and to memory after it commits, so
that a failed write leaves memory untouched. Per engine, memory holds the item catalogue, the
installed model (replaced by one reference assignment) and an LRU cache of user histories that
every event for the user invalidates, so queries see new behaviour at once without a DB read on
the hot path.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lerna.recommender.catalog import ItemCatalog
from lerna.recommender.cco import EventTable, train_cco
from lerna.recommender.config import EngineConfig, parse_duration
from lerna.recommender.errors import ConflictError, InvalidInputError, NotFoundError
from lerna.recommender.history import HistoryItems
from lerna.recommender.model import CCOModel
from lerna.recommender.query import InstalledModel, recommend
from lerna.recommender.schemas import Event, Query, ResultItem
from lerna.recommender.store import EventBatch, RecommenderStore

History = dict[str, HistoryItems]


@dataclass
class EngineState:
    config: EngineConfig
    catalog: ItemCatalog = field(default_factory=ItemCatalog)
    installed: InstalledModel | None = None
    histories: OrderedDict[str, History] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    ignored: int


class RecommenderService:
    def __init__(self, store: RecommenderStore, history_cache_size: int = 100_000) -> None:
        self.store = store
        self._cache_size = history_cache_size
        self._states: dict[str, EngineState] = {}
        self._lock = threading.Lock()

    # engines
    def state(self, engine_id: str) -> EngineState:
        state = self._states.get(engine_id)
        if state is not None:
            return state
        with self._lock:
            if engine_id in self._states:
                return self._states[engine_id]
            raw = self.store.get_engine(engine_id)
            if raw is None:
                raise NotFoundError(f"no engine {engine_id!r}")
            state = EngineState(EngineConfig.model_validate(raw))
            for item, props in self.store.item_properties(engine_id):
                state.catalog.set_properties(item, props)
            blob = self.store.load_model(engine_id)
            if blob is not None:
                state.installed = InstalledModel.install(CCOModel.from_bytes(blob), state.catalog)
            self._states[engine_id] = state
            return state

    def create_engine(self, config: EngineConfig) -> None:
        raw = config.model_dump(by_alias=True, mode="json")
        if not self.store.put_engine(config.engine_id, raw, create=True):
            raise ConflictError(f"engine {config.engine_id!r} already exists")

    def update_engine(self, engine_id: str, config: EngineConfig) -> None:
        if config.engine_id != engine_id:
            raise InvalidInputError(f"engineId {config.engine_id!r} differs from {engine_id!r}")
        raw = config.model_dump(by_alias=True, mode="json")
        if not self.store.put_engine(engine_id, raw, create=False):
            raise NotFoundError(f"no engine {engine_id!r}")
        with self._lock:
            state = self._states.get(engine_id)
            if state is not None:
                state.config = config
                with state.lock:
                    state.histories.clear()

    def delete_engine(self, engine_id: str) -> None:
        if not self.store.delete_engine(engine_id):
            raise NotFoundError(f"no engine {engine_id!r}")
        with self._lock:
            self._states.pop(engine_id, None)

    def list_engines(self) -> list[str]:
        return self.store.list_engines()

    # events
    def ingest(self, engine_id: str, events: Sequence[Event]) -> IngestResult:
        """Apply events in order, all or nothing; an indicator event must name a target item."""
        state = self.state(engine_id)
        names = state.config.algorithm.indicator_of()
        primary = state.config.algorithm.indicators[0].name
        batch = EventBatch()
        ignored = 0
        now = time.time()
        for n, ev in enumerate(events):
            kind = ev.entity_type.lower()
            if ev.event == "$set" and kind == "item":
                batch.ops.append(("set", ev.entity_id, ev.properties))
            elif ev.event == "$unset" and kind == "item":
                batch.ops.append(("unset", ev.entity_id, sorted(ev.properties)))
            elif ev.event == "$delete" and kind in ("item", "user"):
                batch.ops.append((f"delete_{kind}", ev.entity_id, None))
            elif ev.event in names and not ev.event.startswith("$"):
                if kind != "user" or ev.target_entity_id is None:
                    raise InvalidInputError(
                        f"event {n}: indicator event {ev.event!r} needs entityType 'user' "
                        "and a targetEntityId"
                    )
                when = ev.event_time.timestamp() if ev.event_time else now
                batch.ops.append(("insert", ev.entity_id, (ev.event, ev.target_entity_id, when)))
            else:
                ignored += 1
        self.store.apply(engine_id, batch)
        touched_users: set[str] = set()
        for op, key, payload in batch.ops:
            if op == "set":
                state.catalog.set_properties(key, payload)
            elif op == "unset":
                state.catalog.unset_properties(key, payload)
            elif op == "delete_item":
                state.catalog.delete_properties(key)
            else:
                touched_users.add(key)
                if op == "insert" and names[payload[0]] == primary:
                    state.catalog.positions([payload[1]])
        with state.lock:
            for user in touched_users:
                state.histories.pop(user, None)
        return IngestResult(len(batch.ops), ignored)

    def history(self, engine_id: str, state: EngineState, user: str) -> History:
        """The user's newest items per indicator, at most ``maxQueryEvents`` each, deduplicated."""
        with state.lock:
            cached = state.histories.get(user)
            if cached is not None:
                state.histories.move_to_end(user)
                return cached
        algo = state.config.algorithm
        names = algo.indicator_of()
        rows = self.store.user_events(
            engine_id, user, list(names), algo.max_query_events * len(algo.indicators)
        )
        out: History = {}
        for event, item, _ in rows:
            items = out.setdefault(names[event], HistoryItems())
            if len(items) < algo.max_query_events and item not in items:
                items.append(item)
        if self._cache_size:
            with state.lock:
                state.histories[user] = out
                while len(state.histories) > self._cache_size:
                    state.histories.popitem(last=False)
        return out

    def query(self, engine_id: str, query: Query) -> list[ResultItem]:
        state = self.state(engine_id)
        history = self.history(engine_id, state, query.user) if query.user else {}
        return recommend(state.config.algorithm, state.installed, state.catalog, query, history)

    # training
    def train(self, engine_id: str, checkpoint: Callable[[], None] = lambda: None) -> CCOModel:
        """Train on the stored events and install the result; nothing changes if it raises."""
        state = self.state(engine_id)
        algo = state.config.algorithm
        names = algo.indicator_of()
        ttl = state.config.dataset.ttl
        since = time.time() - parse_duration(ttl) if ttl is not None else None
        rows = self.store.training_events(engine_id, list(names), since)
        table = EventTable.from_rows([(u, i, names[e], t) for u, i, e, t in rows])
        checkpoint()
        model = train_cco(algo, table, checkpoint=checkpoint)
        blob = model.to_bytes()
        checkpoint()
        self.store.save_model(engine_id, model.trained_at, blob)
        state.installed = InstalledModel.install(model, state.catalog)
        return model

    # GDPR
    def user_data(self, engine_id: str, user: str) -> list[dict[str, Any]]:
        self.state(engine_id)
        rows = self.store.user_events(engine_id, user, None, None)
        if not rows:
            raise NotFoundError(f"no data about entity {user!r} in engine {engine_id!r}")
        return [
            {"event": e, "entityType": "user", "entityId": user, "targetEntityId": i,
             "eventTime": datetime.fromtimestamp(t, UTC).isoformat()}
            for e, i, t in rows
        ]  # fmt: skip

    def forget_user(self, engine_id: str, user: str) -> None:
        self.ingest(engine_id, [Event(event="$delete", entity_type="user", entity_id=user)])
