"""Train/held-out splits of MovieLens-100K, one user (one device) at a time.

Two protocols (issue 3):

* ``temporal``: each user's last 20% of ratings (by time) are held out; a held-out rating of 4
  or 5 is a positive. A device can only ever learn from its past, so this is the protocol that
  matches the product, and the SDK demo device holds exactly ``temporal_split(...).train``.
* ``stratified``: the Microsoft Recommenders protocol, a random 75/25 split per user where every
  held-out rating is relevant, so our figures line up with its published table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from lerna.core.features import FeatureSchema, encode_context
from lerna.core.models.base import Examples
from lerna.sim.movielens import Ratings, timestamp_to_datetime

Protocol = Literal["temporal", "stratified"]
PROTOCOLS: tuple[Protocol, ...] = ("temporal", "stratified")
POSITIVE_RATING = 4.0


@dataclass(frozen=True)
class UserSplit:
    """One user's ratings, split into what the device trains on and what it is judged on."""

    user: int
    train: Ratings
    test: Ratings
    min_relevant_rating: float  # a held-out rating counts as relevant from this value up

    def relevant_items(self) -> list[str]:
        return [str(i) for i in self.test.items[self.test.ratings >= self.min_relevant_rating]]


def _subset(r: Ratings, idx: np.ndarray) -> Ratings:
    return Ratings(r.users[idx], r.items[idx], r.ratings[idx], r.timestamps[idx])


def _rows_of(ratings: Ratings, user: int) -> np.ndarray:
    lo, hi = np.searchsorted(ratings.users, [user, user + 1])
    if lo == hi:
        raise ValueError(f"user {user} has no ratings")
    return np.arange(lo, hi)


def temporal_split(ratings: Ratings, user: int, holdout: float = 0.2) -> UserSplit:
    """The user's oldest ratings for training and the newest ``holdout`` share held out.

    ``ratings`` must be sorted by (user, timestamp), as ``movielens.load`` returns them.
    """
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be in (0, 1), got {holdout}")
    rows = _rows_of(ratings, user)
    n_test = min(max(1, round(rows.size * holdout)), rows.size - 1) if rows.size > 1 else 0
    cut = rows.size - n_test
    return UserSplit(
        user, _subset(ratings, rows[:cut]), _subset(ratings, rows[cut:]), POSITIVE_RATING
    )


def stratified_split(ratings: Ratings, user: int, ratio: float = 0.75, seed: int = 42) -> UserSplit:
    """A random ``ratio`` of the user's ratings for training, the rest held out (all relevant)."""
    if not 0 < ratio < 1:
        raise ValueError(f"ratio must be in (0, 1), got {ratio}")
    rows = _rows_of(ratings, user)
    perm = np.random.default_rng([seed, user]).permutation(rows)
    cut = round(rows.size * ratio)
    train, test = np.sort(perm[:cut]), np.sort(perm[cut:])
    return UserSplit(user, _subset(ratings, train), _subset(ratings, test), -np.inf)


def split_user(ratings: Ratings, user: int, protocol: Protocol, seed: int = 42) -> UserSplit:
    if protocol == "temporal":
        return temporal_split(ratings, user)
    if protocol == "stratified":
        return stratified_split(ratings, user, seed=seed)
    raise ValueError(f"unknown protocol {protocol!r}; known: {list(PROTOCOLS)}")


def examples_from_ratings(
    schema: FeatureSchema,
    item_index: dict[str, int],
    part: Ratings,
    min_positive_rating: float | None = None,
) -> Examples:
    """Training examples of one device: every movie the user rated was *chosen* (label 1).

    Rating a movie means the user watched it, which is what a ranking of unseen movies has to
    predict; treating low ratings as negatives measurably hurts every protocol (docs/models.md).
    The context is the moment of the rating. With ``min_positive_rating`` set, lower ratings
    become label 0 (shown and not chosen) instead.
    """
    context = (
        np.stack([encode_context(schema, timestamp_to_datetime(int(t))) for t in part.timestamps])
        if len(part)
        else np.zeros((0, schema.context_size), np.float32)
    )
    items = np.fromiter((item_index[str(i)] for i in part.items), np.int64, len(part))
    labels = (
        np.ones(len(part), np.float32)
        if min_positive_rating is None
        else (part.ratings >= min_positive_rating).astype(np.float32)
    )
    return Examples(context, items, labels)
