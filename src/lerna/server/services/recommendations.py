"""The FL-API's side of the recommendation service: it talks to it over HTTP only.

The FL-API never imports ``lerna.recommender`` (the layers are checked): it is a client of the
Harness REST API like any other. The base URL is ``settings.recommender_url``; the embedded
``lerna serve all`` instead puts an ``httpx`` ASGI transport to the mounted recommender on
``app.state.recommender_transport`` so no network hop is needed. Neither set: the feature is
off and every endpoint answers 404 ``recommender_off``.

Devices appear to the recommender only under a pseudonym, ``HMAC(link key, device id)``; the
device's id and uid never leave the FL-API. Devices may send only indicator events about items
of their task's catalogue: never ``$set``/``$delete``, never another user's id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.orm import Session

from lerna.server.errors import Forbidden, LernaError, NotFound, Unprocessable
from lerna.server.models import App, Device, MLTask
from lerna.server.models_rec import RecommenderLink
from lerna.server.services import tasks
from lerna.server.settings import Settings

EMBEDDED_BASE_URL = "http://recommender.embedded"
EVENTS_PER_REQUEST = 5000
DEFAULT_ALGORITHM: dict[str, Any] = {
    "indicators": [
        {"name": "conversion", "aliases": ["buy", "purchase", "like", "play"]},
        {"name": "view", "aliases": ["click", "open", "detail"]},
    ],
    "num": 50,
    "scoring": {"normalizeHistory": True, "targetDamping": 0.5, "popularityWeight": 0.2},
}
"""Used when linking creates the engine: the scoring measured best in bench/recommender.py."""


class RecommenderOff(NotFound):
    default_code = "recommender_off"


class RecommenderUnavailable(LernaError):
    status, default_code = 503, "recommender_unavailable"


class RecommenderRejected(Unprocessable):
    default_code = "recommender_rejected"


@dataclass(frozen=True)
class RecommenderClient:
    base_url: str
    token: str | None
    transport: httpx.AsyncBaseTransport | None
    timeout: float = 10.0

    async def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """One request; transport failures and 5xx become 503, and 4xx are the caller's."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            async with httpx.AsyncClient(
                base_url=self.base_url, transport=self.transport, timeout=self.timeout
            ) as http:
                resp = await http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RecommenderUnavailable(f"recommendation service: {exc}") from None
        if resp.status_code >= 500 or resp.status_code in (401, 403):
            raise RecommenderUnavailable(
                f"recommendation service answered {resp.status_code} to {method} {path}"
            )
        return resp


def client_for(settings: Settings, transport: httpx.AsyncBaseTransport | None) -> RecommenderClient:
    if transport is not None:
        return RecommenderClient(EMBEDDED_BASE_URL, settings.recommender_token, transport)
    if settings.recommender_url:
        return RecommenderClient(settings.recommender_url, settings.recommender_token, None)
    raise RecommenderOff("the recommendation service is not configured (LERNA_RECOMMENDER_URL)")


def _rejected(resp: httpx.Response) -> RecommenderRejected:
    try:
        message = str(resp.json().get("message", resp.text))
    except ValueError:
        message = resp.text[:200]
    return RecommenderRejected(f"recommendation service refused: {message}")


def pseudonym(link: RecommenderLink, device: Device) -> str:
    """Stable per device and link, unlinkable to the device without the link's key."""
    digest = hmac.new(bytes.fromhex(link.pseudonym_key), str(device.id).encode(), hashlib.sha256)
    return "d-" + digest.hexdigest()[:32]


def catalog_events(task: MLTask) -> list[dict[str, Any]]:
    """The task's item metadata as Harness ``$set`` events (lists stay categorical)."""
    ids: list[str] = task.catalog.get("item_ids", [])
    metadata: list[dict[str, Any]] = task.catalog.get("metadata", [{} for _ in ids])
    return [
        {"event": "$set", "entityType": "item", "entityId": item, "properties": props}
        for item, props in zip(ids, metadata, strict=True)
    ]


async def ensure_engine(
    rec: RecommenderClient, engine_id: str, algorithm: dict[str, Any] | None
) -> bool:
    """Create the engine unless it exists; True when it was created."""
    found = await rec.call("GET", f"/engines/{engine_id}")
    if found.status_code == 200:
        return False
    if found.status_code != 404:
        raise _rejected(found)
    config = {"engineId": engine_id, "algorithm": algorithm or DEFAULT_ALGORITHM}
    created = await rec.call("POST", "/engines", config)
    if created.status_code not in (201, 409):
        raise _rejected(created)
    return created.status_code == 201


async def send_events(rec: RecommenderClient, engine_id: str, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), EVENTS_PER_REQUEST):
        resp = await rec.call(
            "POST", f"/engines/{engine_id}/events", events[start : start + EVENTS_PER_REQUEST]
        )
        if resp.status_code != 201:
            raise _rejected(resp)


def get_link(session: Session, app_id: int) -> RecommenderLink:
    link = session.get(RecommenderLink, app_id)
    if link is None:
        raise NotFound("this app is not linked to a recommendation engine", "not_linked")
    return link


def put_link(
    session: Session, app: App, task_id: int | None, engine_id: str, forward_events: bool
) -> tuple[RecommenderLink, MLTask]:
    """Insert or update the app's link (not committed until the caller's transaction is)."""
    app_tasks = tasks.list_in_app(session, app.id)
    if task_id is None:
        if len(app_tasks) != 1:
            raise Unprocessable("the app has several ML tasks (or none): give task_id", "task_id")
        task = app_tasks[0]
    else:
        task = tasks.get_in_app(session, app.id, task_id)
    link = session.get(RecommenderLink, app.id)
    now = datetime.now(UTC)
    if link is None:
        link = RecommenderLink(
            app_id=app.id, task_id=task.id, engine_id=engine_id,
            forward_events=forward_events, pseudonym_key=secrets.token_hex(32), created_at=now,
        )  # fmt: skip
        session.add(link)
    elif link.engine_id != engine_id:
        link.pseudonym_key = secrets.token_hex(32)  # a new engine never sees old pseudonyms
    link.task_id, link.engine_id, link.forward_events, link.updated_at = (
        task.id, engine_id, forward_events, now,
    )  # fmt: skip
    session.flush()
    return link, task


def device_link(session: Session, device: Device, task_id: int) -> RecommenderLink:
    """The link through which this device may use the recommender for ``task_id``."""
    task = tasks.get_in_app(session, device.app_id, task_id)
    link = session.get(RecommenderLink, device.app_id)
    if link is None or link.task_id != task.id:
        raise NotFound(f"task {task_id} is not linked to a recommendation engine", "not_linked")
    return link


async def candidates(
    rec: RecommenderClient, link: RecommenderLink, device: Device, num: int
) -> tuple[list[tuple[str, float]], bool]:
    """Server candidates for the device, and whether they are personalized.

    Personalized (the device's forwarded events count) only where the app forwards events;
    otherwise the engine's ranking (popular, trending) for everyone.
    """
    query: dict[str, Any] = {"num": num}
    if link.forward_events:
        query["user"] = pseudonym(link, device)
    resp = await rec.call("POST", f"/engines/{link.engine_id}/queries", query)
    if resp.status_code != 200:
        raise _rejected(resp)
    result = resp.json()["result"]
    return [(str(r["item"]), float(r["score"])) for r in result], link.forward_events


def check_event_items(task: MLTask, items: Sequence[str]) -> None:
    known = set(task.catalog.get("item_ids", []))
    unknown = sorted({i for i in items if i not in known})
    if unknown:
        raise Unprocessable(f"items not in the task's catalog: {unknown[:5]}", "unknown_item")


def device_events(
    link: RecommenderLink, device: Device, events: Sequence[tuple[str, str, datetime | None]]
) -> list[dict[str, Any]]:
    """Harness events under the device's pseudonym; refused unless the app forwards events."""
    if not link.forward_events:
        raise Forbidden("this app does not forward recommendation events", "forwarding_off")
    who = pseudonym(link, device)
    out = []
    for name, item, when in events:
        event: dict[str, Any] = {
            "event": name, "entityType": "user", "entityId": who,
            "targetEntityType": "item", "targetEntityId": item,
        }  # fmt: skip
        if when is not None:
            event["eventTime"] = when.isoformat()
        out.append(event)
    return out


async def start_training(rec: RecommenderClient, engine_id: str) -> dict[str, Any]:
    resp = await rec.call("POST", f"/engines/{engine_id}/jobs")
    if resp.status_code != 202:
        raise _rejected(resp)
    job: dict[str, Any] = resp.json()
    return job
