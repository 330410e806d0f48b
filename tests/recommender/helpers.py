"""Shared test helpers: the hand-checked data set and a thin Harness client."""

from __future__ import annotations

import math
import time
from functools import partial
from typing import Any

import anyio.from_thread
import httpx
from fastapi import FastAPI

# The hand-checked data set: users and what they bought, in time order.
BUYS: dict[str, list[str]] = {
    "u1": ["a", "b"],
    "u2": ["a", "b"],
    "u3": ["a", "b", "c"],
    "u4": ["c", "d"],
    "u5": ["c", "d"],
    "u6": ["e"],
}
T0 = 1_700_000_000.0


def g_squared(k11: int, k12: int, k21: int, k22: int) -> float:
    n = k11 + k12 + k21 + k22
    rows, cols = (k11 + k12, k21 + k22), (k11 + k21, k12 + k22)
    observed = ((k11, k12), (k21, k22))
    total = 0.0
    for r in range(2):
        for c in range(2):
            o = observed[r][c]
            if o:
                total += o * math.log(o * n / (rows[r] * cols[c]))
    return 2 * total


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def buy_events(buys: dict[str, list[str]] = BUYS, event: str = "buy") -> list[dict[str, Any]]:
    out = []
    for n, (user, items) in enumerate(sorted(buys.items())):
        for k, item in enumerate(items):
            out.append(
                {
                    "event": event,
                    "entityType": "user",
                    "entityId": user,
                    "targetEntityType": "item",
                    "targetEntityId": item,
                    "eventTime": iso(T0 + 100 * n + k),
                }
            )
    return out


class SyncClient:
    """Blocking calls into the app through httpx's ASGITransport (Starlette's SyncClient warns
    about its httpx backend, and warnings are errors here)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._portal.call(partial(self._client.request, method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        self._portal.call(self._client.aclose)
        self._portal_cm.__exit__(None, None, None)
        self.app.state.jobs.shutdown()
        self.app.state.service.store.engine.dispose()


class Harness:
    """A thin Harness client over SyncClient, so tests read as the behaviour they check."""

    def __init__(self, client: SyncClient, token: str | None = None) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def create(self, engine_id: str = "shop", **algorithm: Any) -> None:
        algo = {"indicators": [{"name": "buy"}], **algorithm}
        r = self.client.post(
            "/engines", json={"engineId": engine_id, "algorithm": algo}, headers=self.headers
        )
        assert r.status_code == 201, r.text

    def send(self, events: list[dict[str, Any]], engine_id: str = "shop") -> None:
        r = self.client.post(f"/engines/{engine_id}/events", json=events, headers=self.headers)
        assert r.status_code == 201, r.text

    def set_item(self, item: str, engine_id: str = "shop", **props: Any) -> None:
        self.send([{"event": "$set", "entityType": "item", "entityId": item, "properties": props}],
                  engine_id)  # fmt: skip

    def train(self, engine_id: str = "shop") -> dict[str, Any]:
        r = self.client.post(f"/engines/{engine_id}/jobs", headers=self.headers)
        assert r.status_code == 202, r.text
        job_id = r.json()["jobId"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            job: dict[str, Any] = self.client.get(
                f"/engines/{engine_id}/jobs/{job_id}", headers=self.headers
            ).json()
            if job["status"] in ("successful", "failed", "cancelled"):
                assert job["status"] == "successful", job
                return job
            time.sleep(0.01)
        raise AssertionError("training did not finish in 10 s")

    def query(self, engine_id: str = "shop", **query: Any) -> list[dict[str, Any]]:
        r = self.client.post(f"/engines/{engine_id}/queries", json=query, headers=self.headers)
        assert r.status_code == 200, r.text
        result: list[dict[str, Any]] = r.json()["result"]
        return result

    def items(self, engine_id: str = "shop", **query: Any) -> list[str]:
        return [r["item"] for r in self.query(engine_id, **query)]
