"""Readiness, Prometheus metrics and structured logs with request ids."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from lerna.server.logging_setup import JsonFormatter
from tests.ops.conftest import OpsClient, make_settings
from tests.ops.rounds import run_round


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_ready_checks_the_database(ops: OpsClient) -> None:
    r = ops.http.get("/ready")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok"}  # no Redis configured: not checked


def test_unreachable_redis_makes_ready_fail_but_requests_still_work(
    database_url: str, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from lerna.server.app import create_app

    app = create_app(make_settings(database_url, tmp_path / "d", redis_url="redis://127.0.0.1:9/0"))
    with TestClient(app) as client:
        r = client.get("/ready")
        assert r.status_code == 503
        assert r.json()["checks"] == {"database": "ok", "redis": "error"}
        api = OpsClient(client, app)
        _, created, _ = api.setup_task()
        device = api.enroll(created["token"])  # rate limit and cache fail open
        assert client.get("/v1/device/remote-config", headers=device).status_code == 200
    app.state.engine.dispose()


def test_metrics_count_rounds_participants_uploads_and_latency(ops: OpsClient) -> None:
    _, app, task = ops.setup_task(cohort_size=3, min_participants=3, upload_seconds=600)
    run_round(ops, app, task, devices=3)
    r = ops.http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    s = _samples(r.text)
    assert s[("lerna_metrics_db_up", ())] == 1
    assert s[("lerna_rounds_total", (("state", "completed"),))] == 1
    assert s[("lerna_rounds_total", (("state", "failed"),))] == 0
    assert s[("lerna_round_participants_total", ())] == 3
    assert s[("lerna_round_dropouts_total", ())] == 0
    assert s[("lerna_devices", ())] == 3
    assert s[("lerna_webhook_outbox_depth", ())] == 0
    assert s[("lerna_upload_bytes_total", ())] > 3 * 100
    checkin = (
        "lerna_http_request_duration_seconds_count",
        (("method", "POST"), ("route", "/v1/device/tasks/{task_id}/checkin"), ("status", "200")),
    )
    assert s[checkin] == 3  # labelled by route template, not by raw path


def test_request_ids_are_echoed_and_logged_as_json(ops: OpsClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("lerna.access")
    logger.addHandler(handler)
    try:
        given = ops.http.get("/health", headers={"X-Request-ID": "edge-42.a"})
        made = ops.http.get("/health", headers={"X-Request-ID": "bad id\nwith newline"})
    finally:
        logger.removeHandler(handler)
    assert given.headers["x-request-id"] == "edge-42.a"
    generated = made.headers["x-request-id"]
    assert len(generated) == 32 and generated != "bad id\nwith newline"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(x["request_id"], x["route"], x["status"], x["method"]) for x in lines] == [
        ("edge-42.a", "/health", 200, "GET"),
        (generated, "/health", 200, "GET"),
    ]
    assert all(x["level"] == "info" and x["msg"] == "request" for x in lines)


def test_requests_to_a_mounted_sub_application_are_measured(ops: OpsClient) -> None:
    """``lerna serve all`` mounts the recommender under the FL-API; its requests pass through
    the same middleware while the sub-application replaces ``scope["app"]``."""
    from fastapi import FastAPI

    sub = FastAPI()

    @sub.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    ops.app.mount("/sub", sub)
    r = ops.http.get("/sub/ping")
    assert r.status_code == 200 and r.headers["x-request-id"]
    s = _samples(ops.http.get("/metrics").text)
    counted = [
        k
        for k in s
        if k[0] == "lerna_http_request_duration_seconds_count"
        and ("status", "200") in k[1]
        and any(v.startswith("/sub") or v == "/ping" for _, v in k[1])
    ]
    assert counted, sorted(k for k in s if k[0].endswith("_count"))
