"""HTTP calls to the FL-API. The ``httpx.Client`` is a seam: tests pass one bound to an
in-process app, the simulator and real apps one bound to a URL."""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from lerna.core.protocol import (
    CatalogPublic,
    CheckinResponse,
    DeviceConfig,
    EnrollRequest,
    EnrollResponse,
    SecAggStatus,
    TaskPublic,
    Telemetry,
    UploadAccepted,
)
from lerna.core.secagg.messages import ROUND_HEADER, SENDER_HEADER, MaskedInput
from lerna.sdk.errors import AuthError, ProtocolError, ServerError

T = TypeVar("T", bound=BaseModel)


class DeviceAPI:
    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.credential: str | None = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"} if self.credential else {}

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        try:
            resp = self.http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerError(f"{method} {path}: {exc}") from exc
        if resp.status_code >= 500:
            raise ServerError(f"{method} {path}: server error {resp.status_code}")
        if (
            resp.status_code in (401, 403)
            and _code(resp) != "device_blacklisted"
            and "/upload" not in path
        ):
            raise AuthError(f"{method} {path}: {_message(resp)}")
        if resp.status_code >= 400 and resp.status_code != 304:
            raise ProtocolError(f"{method} {path}: {_message(resp)}", _code(resp), resp.status_code)
        return resp

    def _json(self, model: type[T], method: str, path: str, **kwargs: Any) -> T:
        return model.model_validate_json(self._call(method, path, **kwargs).content)

    def enroll(self, app_token: str, device_uid: str) -> EnrollResponse:
        body = EnrollRequest(device_uid=device_uid).model_dump()
        return self._json(
            EnrollResponse,
            "POST",
            "/v1/devices/enroll",
            json=body,
            headers={"X-App-Token": app_token},
        )

    def config(self) -> DeviceConfig:
        return self._json(DeviceConfig, "GET", "/v1/device/config")

    def tasks(self) -> list[TaskPublic]:
        return [TaskPublic.model_validate(t) for t in self._call("GET", "/v1/device/tasks").json()]

    def catalog(self, task_id: int) -> CatalogPublic:
        return CatalogPublic.model_validate_json(self.catalog_body(task_id))

    def catalog_body(self, task_id: int) -> bytes:
        """The catalog as sent (``lerna.sdk.shared`` parses it once per process)."""
        return self._call("GET", f"/v1/device/tasks/{task_id}/catalog").content

    def model(self, task_id: int, version: int | None = None) -> bytes:
        params = {"version": version} if version is not None else {}
        return self._call("GET", f"/v1/device/tasks/{task_id}/model", params=params).content

    def checkin(self, task_id: int) -> CheckinResponse:
        return self._json(CheckinResponse, "POST", f"/v1/device/tasks/{task_id}/checkin")

    def upload(self, round_id: int, archive: bytes) -> UploadAccepted:
        return self._json(
            UploadAccepted,
            "POST",
            f"/v1/device/rounds/{round_id}/upload",
            content=archive,
            headers={"Content-Type": "application/octet-stream"},
        )

    def secagg_status(self, round_id: int) -> SecAggStatus:
        return self._json(SecAggStatus, "GET", f"/v1/device/rounds/{round_id}/secagg")

    def secagg_send(self, round_id: int, kind: str, message: BaseModel) -> SecAggStatus:
        """A masked input goes as its raw vector (no base64 or JSON around a model-sized
        body); every other message as JSON."""
        if isinstance(message, MaskedInput):
            content: bytes | str = message.vector
            headers = {
                "Content-Type": "application/octet-stream",
                ROUND_HEADER: message.round_id,
                SENDER_HEADER: str(message.sender),
            }
        else:
            content, headers = message.model_dump_json(), {"Content-Type": "application/json"}
        return self._json(
            SecAggStatus,
            "POST",
            f"/v1/device/rounds/{round_id}/secagg/{kind}",
            content=content,
            headers=headers,
        )

    def telemetry(self, task_id: int, data: Telemetry) -> None:
        self._call("POST", f"/v1/device/tasks/{task_id}/telemetry", json=data.model_dump())


def _code(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("code", "error"))
    except ValueError:
        return "error"


def _message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        return f"{resp.status_code} {body.get('code')}: {body.get('message')}"
    except ValueError:
        return f"{resp.status_code} {resp.text[:200]}"
