"""Prometheus metrics for one FL-API process.

Two kinds. Per-process (latency by route, upload bytes) are observed by middleware. Fleet-wide
(rounds, participants, dropouts, outbox depth) are read from the database at scrape time, so
every replica reports the same totals and no event can be missed or double-counted by a
process that died: aggregate them with ``max`` across instances, not ``sum``.
Each app has its own registry, so several apps in one process (tests) do not collide.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lerna.server.models import Device, Round
from lerna.server.models_ops import WebhookDelivery

UPLOAD_ROUTE = "/v1/device/rounds/{round_id}/upload"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class DatabaseCollector(Collector):
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("lerna_metrics_db_up", "1 when the database answered this scrape")
        try:
            families = list(self._from_db())
        except Exception:  # a scrape during an outage reports the outage, not a 500
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _from_db(self) -> Iterator[Metric]:
        with self.factory() as session:
            closed = Round.state != "open"
            by_state = dict(
                session.execute(select(Round.state, func.count()).group_by(Round.state)).all()
            )
            participants, dropouts = session.execute(
                select(
                    func.coalesce(func.sum(case((closed, Round.uploads), else_=0)), 0),
                    func.coalesce(
                        func.sum(case((closed, Round.selected - Round.uploads), else_=0)), 0
                    ),
                )
            ).one()
            outbox = session.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.state == "pending")
            )
            devices = session.scalar(select(func.count()).select_from(Device))
        rounds = CounterMetricFamily("lerna_rounds", "Closed rounds by outcome", labels=["state"])
        for state in ("completed", "failed"):
            rounds.add_metric([state], float(by_state.get(state, 0)))
        yield rounds
        yield GaugeMetricFamily(
            "lerna_rounds_open", "Rounds open now", value=by_state.get("open", 0)
        )
        yield CounterMetricFamily(
            "lerna_round_participants", "Uploads counted in closed rounds", value=participants
        )
        yield CounterMetricFamily(
            "lerna_round_dropouts", "Selected devices that did not upload", value=dropouts
        )
        yield GaugeMetricFamily(
            "lerna_webhook_outbox_depth", "Webhook deliveries waiting", value=outbox or 0
        )
        yield GaugeMetricFamily("lerna_devices", "Enrolled devices", value=devices or 0)


class Metrics:
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "lerna_http_request_duration_seconds",
            "Request latency by route template",
            ["method", "route", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.upload_bytes = Counter(
            "lerna_upload_bytes", "Bytes of accepted model updates", registry=self.registry
        )
        self.registry.register(DatabaseCollector(factory))


def render(metrics: Metrics) -> tuple[bytes, str]:
    return generate_latest(metrics.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Times every request under its route template (never the raw path: ids would explode
    the label set) and counts the bytes of uploads the server accepted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # taken now: a mounted sub-application (the recommender in ``lerna serve all``)
        # replaces scope["app"] while it handles the request
        metrics: Metrics = scope["app"].state.metrics
        started = time.perf_counter()
        status, received = 500, 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            return message

        async def status_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, counting_receive, status_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.latency.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - started
            )
            if route == UPLOAD_ROUTE and status == 200:
                metrics.upload_bytes.inc(received)
