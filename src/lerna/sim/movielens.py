"""MovieLens-100K, read from the copy inside the ``recbole`` wheel.

DESIGN.md, "Data for evaluation": the data set's licence forbids redistribution, so it is
never committed; ``pip install --no-deps recbole==1.2.1`` puts it on disk and we read the
files by path without importing recbole (which would pull in torch).
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lerna.core.features import FeatureSchema, ItemSchema

NAME = "movielens-100k"


class DatasetMissingError(FileNotFoundError):
    """The data files are not installed."""


@dataclass(frozen=True)
class Ratings:
    """All ratings, as parallel arrays sorted by (user, timestamp)."""

    users: np.ndarray  # int64 user ids
    items: np.ndarray  # str item ids (object)
    ratings: np.ndarray  # float32
    timestamps: np.ndarray  # int64 unix seconds

    def __len__(self) -> int:
        return int(self.users.shape[0])


@dataclass(frozen=True)
class MovieLens:
    ratings: Ratings
    items: dict[str, dict[str, str | float | list[str]]]  # item id -> metadata
    genres: list[str]

    def schema(self) -> FeatureSchema:
        years = [float(m["year"]) for m in self.items.values() if "year" in m]  # type: ignore[arg-type]
        return FeatureSchema(
            items=ItemSchema(
                categorical={"genres": self.genres}, numeric={"year": (min(years), max(years) + 1)}
            )
        )

    def user_ids(self) -> list[int]:
        return sorted({int(u) for u in np.unique(self.ratings.users)})


def data_dir() -> Path:
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetMissingError(
            "MovieLens-100K is not installed: run `pip install --no-deps recbole==1.2.1` "
            "(scripts/setup.sh does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / "ml-100k"
    if not (path / "ml-100k.inter").is_file():
        raise DatasetMissingError(f"MovieLens-100K files not found under {path}")
    return path


def load(path: Path | None = None) -> MovieLens:
    base = path or data_dir()
    users, items, ratings, stamps = [], [], [], []
    with open(base / "ml-100k.inter", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader)
        for row in reader:
            users.append(int(row[0]))
            items.append(row[1])
            ratings.append(float(row[2]))
            stamps.append(int(float(row[3])))
    u = np.asarray(users, dtype=np.int64)
    t = np.asarray(stamps, dtype=np.int64)
    order = np.lexsort((t, u))
    meta: dict[str, dict[str, str | float | list[str]]] = {}
    genres: set[str] = set()
    with open(base / "ml-100k.item", newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        for row in reader:
            item_genres = row[3].split() if len(row) > 3 else []
            genres.update(item_genres)
            entry: dict[str, str | float | list[str]] = {"genres": item_genres}
            if len(row) > 2 and row[2].strip().isdigit():
                entry["year"] = float(row[2])
            meta[row[0]] = entry
    return MovieLens(
        ratings=Ratings(
            users=u[order],
            items=np.asarray(items, dtype=object)[order],
            ratings=np.asarray(ratings, dtype=np.float32)[order],
            timestamps=t[order],
        ),
        items=meta,
        genres=sorted(genres),
    )


def timestamp_to_datetime(ts: int) -> datetime:
    return datetime.fromtimestamp(int(ts), tz=UTC)
