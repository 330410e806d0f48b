"""Queries served beneath the framework: the hottest path of the service as a bare ASGI layer.

At 16 concurrent clients a query's latency is queueing behind the others, so every microsecond
of per-request overhead counts 16 times. FastAPI's routing, dependency resolution and request
objects cost about as much as the query itself (profiled in bench/recommender.py's history), so
``QueryFastPath`` answers ``POST .../engines/{id}/queries`` directly and hands every other
request to the app. The FastAPI route stays for the OpenAPI schema and calls the same
``answer_query``, so both paths give byte-identical answers and errors.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lerna.recommender.auth import authenticate
from lerna.recommender.errors import RecommenderError
from lerna.recommender.schemas import Query, QueryResult

_QUERY_PATH = re.compile(r"^/engines/([^/]+)/queries/?$")
_JSON = [(b"content-type", b"application/json")]


def error_body(code: str, message: str, details: object = None) -> bytes:
    body: dict[str, Any] = {"error": code, "message": message}
    if details is not None:
        body["details"] = details
    return json.dumps(body).encode()


def invalid_input(errors: list[dict[str, Any]]) -> bytes:
    """The 400 body of a request that failed validation: first problem in ``message``."""
    details = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in errors
    ]
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    message = f"{'.'.join(first['loc'])}: {first['msg']}" if first["loc"] else first["msg"]
    return error_body("invalid_input", str(message), details)


def answer_query(
    state: State, engine_id: str, authorization: str | None, body: bytes
) -> tuple[int, bytes]:
    """Status and JSON body of one query, errors included (never raises a domain error)."""
    try:
        who = authenticate(state.settings, authorization)
        who.require_engine(engine_id)
        query = Query.model_validate_json(body or b"{}")
        result = QueryResult(result=state.service.query(engine_id, query))
        return 200, result.model_dump_json().encode()
    except RecommenderError as exc:
        return exc.status_code, error_body(exc.code, str(exc))
    except ValidationError as exc:
        return 400, invalid_input(list(exc.errors(include_url=False)))  # type: ignore[arg-type]


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class QueryFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            match = _QUERY_PATH.match(path)
            if match is not None:
                auth = next(
                    (v.decode() for k, v in scope["headers"] if k == b"authorization"), None
                )
                state = scope["app"].state
                status, payload = answer_query(state, match.group(1), auth, await _body(receive))
                headers = [*_JSON, (b"content-length", str(len(payload)).encode())]
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": payload})
                return
        await self.app(scope, receive, send)
