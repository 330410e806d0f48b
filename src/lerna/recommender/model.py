"""The trained model: correlator matrices and backfill rankings, immutable once built.

A model is replaced as a whole (one reference assignment), never edited, which is what lets
queries run without a lock while a new one trains. It is saved as ``.npz`` with
``allow_pickle=False``: plain arrays, no pickle on disk.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray


@dataclass(frozen=True)
class Correlators:
    """Item-to-item weights of one indicator, stored history-item-major for fast scoring.

    ``matrix[j, i]`` is the LLR weight with which having done indicator item ``vocab[j]`` points
    at primary item ``i``; one row gather per history item scores every primary item at once.
    """

    name: str
    vocab: NDArray[np.str_]
    matrix: sp.csr_matrix

    @cached_property
    def index(self) -> dict[str, int]:
        return {str(v): i for i, v in enumerate(self.vocab.tolist())}


@dataclass(frozen=True)
class Ranking:
    name: str
    type: str
    scores: NDArray[np.float64]  # aligned with CCOModel.items; userDefined reads properties instead


@dataclass(frozen=True)
class CCOModel:
    items: NDArray[np.str_]
    correlators: list[Correlators]
    rankings: list[Ranking]
    trained_at: float
    stats: dict[str, float] = field(default_factory=dict)
    prior: NDArray[np.float64] | None = None
    """Per-item score added to every query (the popularity prior of ``scoring``); None is zero."""

    @cached_property
    def item_index(self) -> dict[str, int]:
        return {str(v): i for i, v in enumerate(self.items.tolist())}

    def correlators_of(self, item: str) -> dict[str, list[tuple[str, float]]]:
        """Each indicator's correlators of one primary item, strongest first (for inspection)."""
        idx = self.item_index.get(item)
        out: dict[str, list[tuple[str, float]]] = {}
        if idx is None:
            return out
        for corr in self.correlators:
            col = corr.matrix.getcol(idx).tocoo()
            pairs = sorted(
                zip(col.row.tolist(), col.data.tolist(), strict=True), key=lambda p: -p[1]
            )
            out[corr.name] = [(str(corr.vocab[j]), float(w)) for j, w in pairs]
        return out

    def to_bytes(self) -> bytes:
        arrays: dict[str, NDArray[np.generic]] = {"items": self.items}
        meta: dict[str, object] = {
            "trained_at": self.trained_at,
            "stats": self.stats,
            "correlators": [c.name for c in self.correlators],
            "rankings": [[r.name, r.type] for r in self.rankings],
        }
        for k, c in enumerate(self.correlators):
            m = c.matrix
            arrays[f"c{k}_vocab"] = c.vocab
            arrays[f"c{k}_data"] = m.data
            arrays[f"c{k}_indices"] = m.indices
            arrays[f"c{k}_indptr"] = m.indptr
            arrays[f"c{k}_shape"] = np.asarray(m.shape, dtype=np.int64)
        for k, r in enumerate(self.rankings):
            arrays[f"r{k}"] = r.scores
        if self.prior is not None:
            arrays["prior"] = self.prior
        arrays["meta"] = np.asarray(json.dumps(meta))
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> CCOModel:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            correlators = []
            for k, name in enumerate(meta["correlators"]):
                shape = tuple(int(x) for x in z[f"c{k}_shape"])
                matrix = sp.csr_matrix(
                    (z[f"c{k}_data"], z[f"c{k}_indices"], z[f"c{k}_indptr"]), shape=shape
                )
                correlators.append(Correlators(name, z[f"c{k}_vocab"], matrix))
            rankings = [
                Ranking(name, rtype, z[f"r{k}"]) for k, (name, rtype) in enumerate(meta["rankings"])
            ]
            prior = z["prior"] if "prior" in z.files else None
            return cls(
                z["items"], correlators, rankings, float(meta["trained_at"]), meta["stats"], prior
            )
