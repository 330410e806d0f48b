"""Per-process memory kept per database engine.

A process may serve several databases (the tests, a re-created embedded database), and what it
remembers of one (device lookups, round owners, closed-round snapshots) must never answer for
another. So each such memory is keyed by the engine a session is bound to, weakly, so that a
disposed engine's entries go with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import UnboundExecutionError
from sqlalchemy.orm import Session

V = TypeVar("V")


def engine_of(session: Session) -> Engine | None:
    """The engine ``session`` is bound to; None for a session of another part (bound per
    mapper, or not at all)."""
    try:
        bind = session.get_bind()
    except UnboundExecutionError:
        return None
    return bind.engine if isinstance(bind, Connection) else bind


class PerEngine(Generic[V]):
    """One ``make()`` value per engine, made on first use."""

    def __init__(self, make: Callable[[], V]) -> None:
        self._make = make
        self._values: WeakKeyDictionary[Engine, V] = WeakKeyDictionary()

    def of(self, session: Session) -> V | None:
        """The value for ``session``'s engine; None when it has none (see ``engine_of``)."""
        engine = engine_of(session)
        if engine is None:
            return None
        found = self._values.get(engine)
        if found is None:
            found = self._values.setdefault(engine, self._make())
        return found
