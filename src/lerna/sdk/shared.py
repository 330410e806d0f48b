"""Parse results that every client of one process can share: catalogs and model archives.

A host app runs one client, so for it these caches hold one entry. A process that runs many
clients (the fleet simulator, a test suite) would otherwise parse the same 200 KB catalog and
the same model archive once per client. Entries are keyed by a digest of the exact bytes the
server sent, so two clients share a parse only when they received identical content, and the
arrays are read-only so that no client can change what another one holds.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from lerna.core.features import ItemCatalog, ItemSchema
from lerna.core.protocol import CatalogPublic
from lerna.core.weights import Manifest, load_archive

T = TypeVar("T")
LIMIT = 4

_entries: OrderedDict[bytes, object] = OrderedDict()
_lock = threading.Lock()


def _shared(key: bytes, make: Callable[[], T]) -> T:
    with _lock:
        if key in _entries:
            _entries.move_to_end(key)
            return _entries[key]  # type: ignore[return-value]
    value = make()  # outside the lock: a parse may take a while, a duplicate one is harmless
    with _lock:
        _entries[key] = value
        while len(_entries) > LIMIT:
            _entries.popitem(last=False)
    return value


def _digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=20)
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.digest()


def catalog(schema: ItemSchema, body: bytes) -> ItemCatalog:
    """The task's items encoded with its schema, from the catalog response body."""

    def build() -> ItemCatalog:
        parsed = CatalogPublic.model_validate_json(body)
        built = ItemCatalog.build(schema, dict(zip(parsed.item_ids, parsed.metadata, strict=True)))
        built.features.setflags(write=False)
        return built

    return _shared(_digest(b"catalog", schema.model_dump_json().encode(), body), build)


def archive(data: bytes) -> tuple[Manifest, dict[str, np.ndarray]]:
    """A verified weights archive (``load_archive`` raises on a bad one; failures are not kept)."""

    def parse() -> tuple[Manifest, dict[str, np.ndarray]]:
        manifest, arrays = load_archive(data)
        for arr in arrays.values():
            arr.setflags(write=False)
        return manifest, arrays

    return _shared(_digest(b"archive", data), parse)
