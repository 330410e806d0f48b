"""The FL-API's link to the MPC service (two-server mode), over HTTP only.

The FL-API never imports ``lerna.mpc`` (the layers are checked): it signs device tickets with
the key it shares with the MPC service and asks ``POST /v1/rounds/{id}/mask-sum`` with its own
token, like any other client. A deployment gives ``LERNA_MPC_URL``; the embedded
``lerna serve all`` instead mounts the MPC app at ``/mpc`` and attaches a
``SyncASGITransport`` to it, so no network hop is needed.

Round closing runs in worker threads (request handlers, the round ticker) inside a database
transaction, so this client is synchronous.

Errors: ``MPCUnavailable`` (unreachable, 5xx, our credential refused: retry later, or fail the
round once a grace period is over) and ``MPCRefused`` (a 4xx refusal with the service's stable
code: the round cannot be unmasked, fail it).
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field

import httpx
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ValidationError

from lerna.core.secagg import ProtocolError
from lerna.core.secagg.messages import decode_vector
from lerna.core.secagg.tickets import MAX_TTL_SECONDS, issue_ticket

EMBEDDED_BASE_URL = "http://mpc.embedded"
EMBEDDED_GATEWAY_PATH = "/mpc/gateway/v1"


class MPCUnavailable(Exception):
    pass


class MPCRefused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


class _MaskSum(BaseModel):
    round_id: str
    device_count: int
    vector_length: int
    noise_added: bool
    negated_mask_sum: str


class SyncASGITransport(httpx.BaseTransport):
    """Calls an ASGI app from synchronous code in a worker thread (never from an event loop)."""

    def __init__(self, app: object) -> None:
        self._inner = httpx.ASGITransport(app=app)  # type: ignore[arg-type]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> httpx.Response:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._inner.handle_async_request(forwarded)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return asyncio.run(call())


@dataclass
class MPCLink:
    """Where the MPC service is and the secrets shared with it (None when two-server is off)."""

    base_url: str | None
    gateway_url: str
    token: str
    ticket_key: bytes
    transport: httpx.BaseTransport | None = field(default=None, repr=False)
    timeout: float = 120.0

    @property
    def available(self) -> bool:
        return self.base_url is not None

    def attach(self, transport: httpx.BaseTransport) -> None:
        """Embedded: reach the MPC app mounted in this process at /mpc."""
        self.base_url, self.transport = EMBEDDED_BASE_URL, transport
        self.gateway_url = EMBEDDED_GATEWAY_PATH

    def ticket(self, device_id: str, mpc_round_id: str, ttl: float) -> str:
        seconds = int(min(max(ttl, 60.0), MAX_TTL_SECONDS))
        return issue_ticket(self.ticket_key, device_id, mpc_round_id, int(time.time()), seconds)

    def negated_mask_sum(
        self,
        mpc_round_id: str,
        device_ids: list[str],
        vector_length: int,
        noise: dict[str, float] | None,
    ) -> npt.NDArray[np.uint32]:
        """-(sum of the listed devices' masks), plus central noise when asked; at most once."""
        if self.base_url is None:
            raise MPCUnavailable("no MPC service is configured (LERNA_MPC_URL)")
        body = {"device_ids": device_ids, "vector_length": vector_length, "noise": noise}
        try:
            with httpx.Client(
                base_url=self.base_url, transport=self.transport, timeout=self.timeout
            ) as http:
                resp = http.post(
                    f"/v1/rounds/{mpc_round_id}/mask-sum",
                    json=body,
                    headers={
                        "Authorization": f"Bearer {self.token}",
                        "Accept": "application/octet-stream, application/json;q=0.5",
                    },
                )
        except httpx.HTTPError as exc:
            raise MPCUnavailable(f"MPC service unreachable: {exc}") from None
        if resp.status_code >= 500 or resp.status_code == 401:
            raise MPCUnavailable(f"MPC service answered {resp.status_code}")
        if resp.status_code >= 400:
            try:
                err = resp.json()
                code, detail = str(err.get("code", "refused")), str(err.get("detail", ""))
            except ValueError:
                code, detail = "refused", resp.text[:200]
            raise MPCRefused(code, detail)
        if resp.headers.get("content-type", "").startswith("application/octet-stream"):
            return _raw_answer(resp, len(device_ids), vector_length)
        try:
            answer = _MaskSum.model_validate(resp.json())
            if answer.device_count != len(device_ids) or answer.vector_length != vector_length:
                raise MPCRefused("bad_answer", "the answer does not match the request")
            return decode_vector(base64.b64decode(answer.negated_mask_sum), vector_length)
        except (ValueError, ValidationError, ProtocolError) as exc:
            raise MPCRefused("bad_answer", f"unreadable answer: {exc}") from None


def _raw_answer(
    resp: httpx.Response, device_count: int, vector_length: int
) -> npt.NDArray[np.uint32]:
    """The binary answer: the vector as the body, what it answers in headers."""
    try:
        count = int(resp.headers.get("x-lerna-device-count", "-1"))
        length = int(resp.headers.get("x-lerna-vector-length", "-1"))
    except ValueError:
        count = length = -1
    if count != device_count or length != vector_length:
        raise MPCRefused("bad_answer", "the answer does not match the request")
    try:
        return decode_vector(resp.content, vector_length)
    except (ValueError, ProtocolError) as exc:
        raise MPCRefused("bad_answer", f"unreadable answer: {exc}") from None
