"""Test helpers: a thin wrapper over the FL-API's HTTP surface and a tiny synthetic catalog."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import numpy as np

from lerna.core.weights import Manifest, dump_archive, load_archive

SCHEMA = {
    "items": {
        "categorical": {"genre": ["news", "sport", "music"]},
        "numeric": {"year": [2000, 2030]},
    }
}
CATALOG = {
    f"item{i}": {"genre": ["news", "sport", "music"][i % 3], "year": 2000 + i} for i in range(12)
}


PLAIN = {"mode": "none", "noise_multiplier": 0, "epsilon_budget": None}


class ApiClient:
    """Calls the FL-API like a customer and like devices would."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def signup(self, email: str | None = None, password: str = "correct-horse-9") -> dict[str, str]:
        email = email or f"{uuid.uuid4().hex[:8]}@example.com"
        r = self.http.post(
            "/api/auth/register", json={"email": email, "password": password, "name": "Tester"}
        )
        assert r.status_code == 201, r.text
        login = self.http.post("/api/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        return {"Authorization": f"Bearer {login.json()['access_token']}"}

    def create_app(self, headers: dict[str, str], name: str = "news") -> dict[str, Any]:
        r = self.http.post("/api/apps", json={"name": name}, headers=headers)
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def create_task(self, headers: dict[str, str], app_id: int, **config: Any) -> dict[str, Any]:
        body = {
            "name": "feed",
            "feature_schema": SCHEMA,
            "catalog": {"items": CATALOG},
            "privacy": PLAIN,
            **config,
        }
        r = self.http.post(f"/api/apps/{app_id}/tasks", json=body, headers=headers)
        assert r.status_code == 201, r.text
        task: dict[str, Any] = r.json()
        return task

    def setup_task(self, **config: Any) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        headers = self.signup()
        app = self.create_app(headers)
        task = self.create_task(headers, app["id"], **config)
        return headers, app, task

    def enroll(self, app_token: str, uid: str | None = None) -> dict[str, str]:
        r = self.http.post(
            "/v1/devices/enroll",
            json={"device_uid": uid or uuid.uuid4().hex},
            headers={"X-App-Token": app_token},
        )
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['credential']}"}

    def checkin(self, device: dict[str, str], task_id: int) -> dict[str, Any]:
        r = self.http.post(f"/v1/device/tasks/{task_id}/checkin", headers=device)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def model(self, device: dict[str, str], task_id: int) -> tuple[Manifest, dict[str, np.ndarray]]:
        r = self.http.get(f"/v1/device/tasks/{task_id}/model", headers=device)
        assert r.status_code == 200, r.text
        return load_archive(r.content)

    def upload(
        self,
        device: dict[str, str],
        round_id: int,
        update: dict[str, np.ndarray],
        *,
        base_version: int = 0,
        num_examples: int = 10,
        upload_id: str | None = None,
        model: str = "logistic",
        meta: dict[str, Any] | None = None,
    ) -> httpx.Response:
        from lerna.core.weights import layout_of

        meta = meta or {
            "round_id": round_id,
            "base_version": base_version,
            "num_examples": num_examples,
            "upload_id": upload_id or uuid.uuid4().hex,
            "metrics": {"ndcg@10": 0.25},
        }
        manifest = Manifest(
            kind="update", model=model, version=base_version, arrays=layout_of(update), meta=meta
        )
        return self.http.post(
            f"/v1/device/rounds/{round_id}/upload",
            content=dump_archive(manifest, update),
            headers={**device, "Content-Type": "application/octet-stream"},
        )


def update_like(weights: dict[str, np.ndarray], value: float) -> dict[str, np.ndarray]:
    return {k: np.full_like(v, value) for k, v in weights.items()}
