"""Hyper-personalization measured: server candidates re-ranked on the device, against each alone.

Three rankings of the same held-out items (``lerna.sim.evaluation``'s split and metrics):

* **server**: the recommendation service's top ``pool`` for the user, in its order;
* **device**: the federated on-device model scoring the whole catalogue;
* **combined**: the server's top ``pool`` re-ranked by ``lerna.sdk.recommendations.fuse``, the
  very function ``LernaClient.top_n(candidates="server")`` runs on a device.

The simulator may not import the recommendation service (layering), so the caller passes the
server's candidates in: ``bench/recommender.py`` trains the service on ``server_events`` (what
a device forwarding its events would have sent) and queries it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lerna.sdk.recommendations import fuse, pool_size
from lerna.sim.evaluation import (
    DEFAULT_MODEL,
    DEFAULT_ROUNDS,
    K,
    Prepared,
    metrics_of,
    score_all,
    train_federated,
)
from lerna.sim.movielens import MovieLens
from lerna.sim.splits import split_user

ServerEvent = tuple[str, str, float, float]
"""``(user, item, rating, unix time)`` of one training rating, as the server receives it."""


def server_events(prepared: Prepared, data: MovieLens) -> list[ServerEvent]:
    """The training ratings of every simulated device, the same split the devices train on."""
    out: list[ServerEvent] = []
    for user in prepared.users:
        train = split_user(data.ratings, user, prepared.protocol).train
        out += [
            (str(user), str(i), float(r), float(t))
            for i, r, t in zip(train.items, train.ratings, train.timestamps, strict=True)
        ]
    return out


def device_scores(
    prepared: Prepared,
    kind: str = DEFAULT_MODEL,
    rounds: int = DEFAULT_ROUNDS,
    hyper: dict[str, Any] | None = None,
    seed: int = 0,
) -> NDArray[np.float64]:
    """Users by catalogue scores of the federated model, each device personalized."""
    model, personal = train_federated(prepared, kind, rounds, hyper, seed=seed)
    scores: NDArray[np.float64] = score_all(model, prepared, personal)
    return scores


def _ranked(
    shape: tuple[int, int], server: Sequence[NDArray[np.int64]], pool: int, values: Any
) -> NDArray[np.float64]:
    """A scores matrix that ranks only each user's first ``pool`` server candidates."""
    out = np.full(shape, -np.inf)
    for u, candidates in enumerate(server):
        top = candidates[:pool]
        out[u, top] = values(u, top)
    return out


def evaluate_hybrid(
    prepared: Prepared,
    device: NDArray[np.float64],
    server: Sequence[NDArray[np.int64]],
    pool: int | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics of server alone, device alone and combined.

    ``server[u]`` holds catalogue indices of the service's candidates for ``prepared.users[u]``,
    best first (at least ``pool`` of them, the user's training items already excluded);
    ``pool`` defaults to what ``top_n`` asks for when it shows ``K`` items.
    """
    if len(server) != len(prepared.users) or device.shape[0] != len(prepared.users):
        raise ValueError("server and device need one row per prepared user, in the same order")
    pool = pool or pool_size(K)
    shape = device.shape
    server_only = _ranked(shape, server, pool, lambda _u, top: -np.arange(top.size, dtype=float))
    combined = _ranked(shape, server, pool, lambda u, top: fuse(device[u, top]))
    return {
        "server": metrics_of(server_only, prepared),
        "device": metrics_of(device, prepared),
        "combined": metrics_of(combined, prepared),
    }
