"""The device routes that open their own session (``bodies.with_device``, one worker-thread
hop each) keep what the dependency-based routes did: the credential is checked first, the
answer is committed before it is sent, a device of another app sees nothing, and the
threadpool carries the request's context variables to the worker."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from lerna.server.threadpool import run_sync
from tests.helpers import ApiClient

ROUTES = [
    ("GET", "/v1/device/config"),
    ("GET", "/v1/device/tasks"),
    ("GET", "/v1/device/tasks/{task}/catalog"),
    ("GET", "/v1/device/tasks/{task}/model"),
    ("POST", "/v1/device/tasks/{task}/checkin"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_device_routes_refuse_missing_and_unknown_credentials(
    api: ApiClient, method: str, path: str
) -> None:
    _, app, task = api.setup_task()
    url = path.format(task=task["id"])
    r = api.http.request(method, url)
    assert r.status_code == 401 and r.json()["code"] == "missing_credential"
    assert r.headers["www-authenticate"] == "Bearer"
    r = api.http.request(method, url, headers={"Authorization": "Bearer dev_nope"})
    assert r.status_code == 401 and r.json()["code"] == "bad_credential"
    device = api.enroll(app["token"])
    assert api.http.request(method, url, headers=device).status_code == 200


def test_a_check_in_is_committed_before_its_answer(api: ApiClient) -> None:
    headers, app, task = api.setup_task(cohort_size=2, min_participants=2)
    first = api.checkin(api.enroll(app["token"]), task["id"])
    assert first["action"] == "train"
    rounds = api.http.get(
        f"/api/apps/{app['id']}/tasks/{task['id']}/rounds", headers=headers
    ).json()
    assert rounds[0]["id"] == first["round_id"] and rounds[0]["selected"] == 1


def test_model_download_answers_304_for_its_etag(api: ApiClient) -> None:
    _, app, task = api.setup_task()
    device = api.enroll(app["token"])
    url = f"/v1/device/tasks/{task['id']}/model"
    first = api.http.get(url, headers=device)
    assert first.status_code == 200 and first.headers["x-model-version"] == "0"
    again = api.http.get(url, headers={**device, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_run_sync_runs_off_the_loop_in_the_callers_context() -> None:
    var: contextvars.ContextVar[str | None] = contextvars.ContextVar("var", default=None)

    def where() -> tuple[str | None, int]:
        return var.get(), threading.get_ident()

    def fails() -> None:
        raise ValueError("from the worker")

    async def main() -> tuple[int, tuple[str | None, int]]:
        var.set("request-1")
        with pytest.raises(ValueError, match="from the worker"):
            await run_sync(fails)
        return threading.get_ident(), await run_sync(where)

    loop_thread, (value, worker_thread) = asyncio.run(main())
    assert value == "request-1" and worker_thread != loop_thread
