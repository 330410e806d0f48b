"""A user's history items that remember where they sit in the model and the catalogue.

A user's recent history is cached across queries (see ``RecommenderService.history``), and
resolving its item ids to correlator rows and catalogue positions took about 40% of a query.
Each list therefore keeps those arrays: correlator rows per model (a weak reference to the
correlators tells when a new model was installed) and catalogue positions per catalogue size
(the catalogue only appends, so a position never changes, but an item may become known).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from lerna.recommender.catalog import ItemCatalog
from lerna.recommender.model import Correlators


def rows_of(corr: Correlators, items: Iterable[str]) -> NDArray[np.int64]:
    """Distinct rows of ``corr`` for the items it knows."""
    index = corr.index
    return np.unique(np.fromiter((j for i in items if (j := index.get(i)) is not None), np.int64))


class HistoryItems(list[str]):
    """One indicator's items, newest first; filled once, then only read."""

    def __init__(self, items: Iterable[str] = ()) -> None:
        super().__init__(items)
        self._rows: tuple[weakref.ref[Correlators], NDArray[np.int64]] | None = None
        self._positions: tuple[int, NDArray[np.int64]] | None = None

    def rows_in(self, corr: Correlators) -> NDArray[np.int64]:
        cached = self._rows
        if cached is not None and cached[0]() is corr:
            return cached[1]
        rows = rows_of(corr, self)
        self._rows = (weakref.ref(corr), rows)
        return rows

    def positions_in(self, catalog: ItemCatalog) -> NDArray[np.int64]:
        cached = self._positions
        if cached is not None and cached[0] == len(catalog):
            return cached[1]
        size = len(catalog)
        positions = catalog.known(self)
        self._positions = (size, positions)
        return positions


def history_rows(corr: Correlators, items: Sequence[str]) -> NDArray[np.int64]:
    return items.rows_in(corr) if isinstance(items, HistoryItems) else rows_of(corr, items)


def history_positions(catalog: ItemCatalog, items: Sequence[str]) -> NDArray[np.int64]:
    return items.positions_in(catalog) if isinstance(items, HistoryItems) else catalog.known(items)
