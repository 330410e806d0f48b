"""Server-side recommendations on the device: candidates from the recommendation service,
re-ranked by the on-device model (DESIGN.md's hyper-personalization).

The server knows the catalogue and, where the app forwards them, recommendation events under
a pseudonym; the device knows its private history and context. ``top_n(candidates="server")``
asks the FL-API for a pool of candidates larger than ``n`` and orders it with ``fuse``: a
weighted reciprocal-rank fusion of the server's order and the device model's order, because
the two rank on different scales and each is right where the other is blind (bench/
recommender.py measures the combination against each alone).

Nothing here sends features, labels or context: the only uploads are the events the app
chose to submit with ``submit_recommendation_event``, and only if the app forwards them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from lerna.core.protocol import CandidatesPublic, RecommendationEvent, RecommendationEvents
from lerna.sdk.errors import InputError, LernaSDKError

if TYPE_CHECKING:
    from lerna.sdk.api import DeviceAPI
    from lerna.sdk.client import LernaClient

POOL_FACTOR = 4
MIN_POOL = 50
RRF_K = 10.0
DEVICE_WEIGHT = 1.0
"""Defaults of ``fuse``; chosen on MovieLens-100K (see docs/recommender.md, "Hybrid")."""


@dataclass(frozen=True)
class Candidate:
    item: str
    score: float


def _task_id(client: LernaClient) -> int:
    if client.task is None:
        raise LernaSDKError("call start() first")
    return client.task.id


def server_candidates(api: DeviceAPI, task_id: int, n: int) -> tuple[list[Candidate], bool]:
    """The server's candidates for this device, best first, and whether they are personal."""
    if not 1 <= n <= 200:
        raise InputError("n must be between 1 and 200")
    got = api._json(
        CandidatesPublic, "GET", f"/v1/device/tasks/{task_id}/candidates", params={"num": n}
    )
    return [Candidate(c.item, c.score) for c in got.items], got.personalized


def pool_size(n: int) -> int:
    """How many server candidates ``top_n`` re-ranks to return ``n``."""
    return min(200, max(POOL_FACTOR * n, MIN_POOL))


def get_recommendations(client: LernaClient, n: int = 20) -> list[Candidate]:
    """The server's recommendations as they are (``getRecommendations`` of the original SDK)."""
    return server_candidates(client.api, _task_id(client), n)[0]


def submit_recommendation_event(
    client: LernaClient, event: str, item: str, when: datetime | None = None
) -> None:
    """Tell the recommender that this user did ``event`` (a purchase, a view) on ``item``.

    Only apps that enabled event forwarding accept these (a ``ProtocolError`` with code
    ``forwarding_off`` otherwise); the server stores them under a pseudonym of the device.
    """
    try:
        body = RecommendationEvents(events=[RecommendationEvent(event=event, item=item, time=when)])
    except ValidationError as exc:
        raise InputError(f"invalid recommendation event: {exc.errors()[0]['msg']}") from exc
    client.api._call(
        "POST",
        f"/v1/device/tasks/{_task_id(client)}/recommendation-events",
        json=body.model_dump(mode="json", exclude_none=True),
    )


def fuse(
    device_scores: NDArray[np.floating], k: float = RRF_K, device_weight: float = DEVICE_WEIGHT
) -> NDArray[np.float64]:
    """Fused scores of server candidates given in server order (position = server rank).

    ``1 / (k + server rank) + device_weight / (k + device rank)``; ranks start at 1, ties in
    device scores keep the server's order. Higher is better.
    """
    scores = np.asarray(device_scores, dtype=np.float64)
    n = scores.size
    server_rank = np.arange(1, n + 1, dtype=np.float64)
    device_rank = np.empty(n, dtype=np.float64)
    device_rank[np.argsort(-scores, kind="stable")] = server_rank
    fused: NDArray[np.float64] = 1.0 / (k + server_rank) + device_weight / (k + device_rank)
    return fused


def server_pool(client: LernaClient, n: int) -> list[str]:
    """Server candidates for ``top_n(n, candidates="server")``, limited to items the device's
    catalogue knows (it can only score those), in server order."""
    found, _ = server_candidates(client.api, _task_id(client), pool_size(n))
    return [c.item for c in found if c.item in client.index]
