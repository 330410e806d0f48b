"""Sending webhooks: payloads per kind, the signature, and the worker thread draining the outbox.

Payloads are built as Python objects and encoded with ``json.dumps`` (never string templates),
so a task named ``"}`` cannot break or forge a message. Generic HTTPS receivers verify

    X-Lerna-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

and should refuse a timestamp older than a few minutes (replay) and deduplicate on
``X-Lerna-Delivery`` (delivery is at least once).

Webhook URLs come from customers, so the FL-API must not become their way into the operator's
network (SSRF): unless ``LERNA_WEBHOOK_ALLOW_PRIVATE`` is set, a URL whose host is, or resolves
to, a loopback, private, link-local (the 169.254.169.254 metadata service), shared, reserved or
multicast address is refused when registered and again at every delivery, because DNS can change
after registration. A delivery connects to the very address it checked (the URL is pinned to it,
with the name kept for ``Host`` and TLS), so a name that answers differently a millisecond later
(DNS rebinding) gains nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy.orm import Session, sessionmaker

from lerna.server.db import transaction
from lerna.server.services import webhooks
from lerna.server.services.webhooks import Claimed, SecretBox
from lerna.server.settings import Settings

log = logging.getLogger("lerna.server.webhooks")
USER_AGENT = "Lerna-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status_code: int | None
    error: str | None


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedDestination(Exception):
    """The URL's host is, or resolves to, an address webhooks may not call; the message says
    which, in words a customer can act on."""


def is_public(ip: IPAddress) -> bool:
    """Globally routable unicast; IPv4 embedded in IPv6 (mapped, 6to4) is judged as IPv4."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is not None:
            return is_public(inner)
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` names (an IP literal names itself). ``getaddrinfo`` also reads the
    spellings ``ipaddress`` does not (``2130706433``, ``0x7f.1``, ``127.1``), so they are judged
    by the address they reach, not by how they look. Raises ``socket.gaierror``."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # sockaddr[0] is the address text; IPv6 may carry a "%scope" suffix
    return list(dict.fromkeys(ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos))


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname:
        raise BlockedDestination("the URL has no host")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def check_registration(url: str) -> None:
    """At registration: refuse a host that is or resolves to a non-public address. A name that
    does not resolve (yet) is accepted: every delivery resolves and checks it again."""
    host, port = _host_port(url)
    try:
        addresses = resolve(host, port)
    except (socket.gaierror, UnicodeError):
        return
    _refuse_private(host, addresses)


def _refuse_private(host: str, addresses: list[IPAddress]) -> None:
    private = [ip for ip in addresses if not is_public(ip)]
    if private:
        said = host if str(private[0]) == host else f"{host} resolves to {private[0]}, which"
        raise BlockedDestination(
            f"{said} is a loopback, private, link-local or otherwise non-public address;"
            " webhooks may only call public internet addresses"
        )


def pin(url: str, ip: IPAddress) -> str:
    """``url`` with its host replaced by ``ip`` (user info, port, path and query kept)."""
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = (f"{userinfo}@" if userinfo else "") + host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def destination(url: str, allow_private: bool) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Where one delivery connects: the URL to request, extra headers, request extensions.

    Checked now, not only at registration (DNS can change), and pinned to the checked address
    so the connection cannot go anywhere else. Raises ``BlockedDestination`` or
    ``socket.gaierror``."""
    if allow_private:
        return url, {}, {}
    host, port = _host_port(url)
    addresses = resolve(host, port)
    _refuse_private(host, addresses)
    return pinned(url, addresses[0])


def pinned(url: str, ip: IPAddress) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The request for ``url`` sent to ``ip``: ``Host`` and TLS (SNI and certificate check)
    keep the URL's name, so the receiver and its certificate see what they would have."""
    parts = urlsplit(url)
    headers = {"Host": parts.netloc.rpartition("@")[2], "Connection": "close"}
    # close: a pooled connection keyed by the bare address must not carry another name's request
    extensions: dict[str, Any] = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return pin(url, ip), headers, extensions


def summary(event: str, data: dict[str, Any]) -> str:
    task = data.get("task", "?")
    if event == "round_completed":
        return f"Round {data.get('round')} of {task} completed with {data.get('participants')} participants"
    if event == "version_published":
        return f"Version {data.get('version')} of {task} published"
    if event == "round_failed":
        return f"Round {data.get('round')} of {task} failed: {data.get('failure')}"
    return f"Lerna {event}"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def build_request(job: Claimed, now: datetime) -> tuple[dict[str, str], bytes]:
    """Headers and body for one delivery, by webhook kind."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Lerna-Event": job.event,
        "X-Lerna-Delivery": str(job.id),
    }
    text = summary(job.event, job.payload)
    body: dict[str, Any]
    if job.kind == "slack":
        body = {"text": text}
    elif job.kind == "fcm":
        # FCM HTTP v1 (projects/<id>/messages:send); data values must be strings.
        data = {k: "" if v is None else str(v) for k, v in job.payload.items()}
        body = {
            "message": {
                "topic": f"lerna-app-{job.app_id}",
                "notification": {"title": "Lerna", "body": text},
                "data": {"event": job.event, **data},
            }
        }
        if job.secret:
            headers["Authorization"] = f"Bearer {job.secret}"
    else:
        body = {
            "id": job.id,
            "event": job.event,
            "created_at": job.created_at.isoformat(),
            "data": job.payload,
        }
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    if job.kind == "https" and job.secret:
        headers["X-Lerna-Signature"] = sign(job.secret, int(now.timestamp()), raw)
    return headers, raw


def send(client: httpx.Client, job: Claimed, now: datetime, *, allow_private: bool) -> Outcome:
    headers, body = build_request(job, now)
    try:
        url, extra, extensions = destination(job.url, allow_private)
    except BlockedDestination as exc:
        return Outcome(False, None, f"refused: {exc}"[:255])
    except (socket.gaierror, UnicodeError) as exc:
        return Outcome(False, None, f"cannot resolve the webhook host: {exc}"[:255])
    try:
        response = client.post(
            url, content=body, headers={**headers, **extra}, extensions=extensions
        )
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:255])
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code, None)
    return Outcome(False, response.status_code, f"receiver answered {response.status_code}")


def new_client(settings: Settings) -> httpx.Client:
    return httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False)


class WebhookWorker:
    """Drains the outbox in a daemon thread; every replica runs one, claims never overlap.
    ``periodic`` jobs (log retention) ride on the same thread at their own interval."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        box: SecretBox,
        periodic: list[tuple[float, Callable[[], object]]] | None = None,
    ) -> None:
        self.factory, self.settings, self.box = factory, settings, box
        self.periodic = [(interval, job, 0.0) for interval, job in periodic or []]
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="webhook-worker", daemon=True)
        self.lease = timedelta(seconds=max(30.0, 3 * settings.webhook_timeout_seconds))

    def start(self) -> WebhookWorker:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=self.settings.webhook_timeout_seconds + 5)

    def drain_once(self, client: httpx.Client) -> int:
        """Send every delivery due now; the number attempted."""
        now = datetime.now(UTC)
        with transaction(self.factory) as session:
            jobs = webhooks.claim_due(session, self.box, now, self.lease)
        for job in jobs:
            if self.stop_event.is_set():
                break  # unsent claims go out after the lease, from this or another replica
            outcome = send(
                client,
                job,
                datetime.now(UTC),
                allow_private=self.settings.webhook_allow_private,
            )
            if not outcome.delivered:
                log.warning(
                    "webhook delivery failed",
                    extra={"delivery": job.id, "attempt": job.attempts, "error": outcome.error},
                )
            with transaction(self.factory) as session:
                webhooks.record(
                    session,
                    job.id,
                    delivered=outcome.delivered,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    now=datetime.now(UTC),
                    max_attempts=self.settings.webhook_max_attempts,
                    base_seconds=self.settings.webhook_backoff_seconds,
                )
        return len(jobs)

    def _run(self) -> None:
        with new_client(self.settings) as client:
            while not self.stop_event.wait(self.settings.worker_poll_seconds):
                try:
                    while self.drain_once(client) and not self.stop_event.is_set():
                        pass
                    self._run_periodic()
                except Exception:  # a transient DB error must not kill the worker
                    log.exception("webhook worker pass failed")

    def _run_periodic(self) -> None:
        now = datetime.now(UTC).timestamp()
        for i, (interval, job, last) in enumerate(self.periodic):
            if now - last >= interval:
                self.periodic[i] = (interval, job, now)
                job()
