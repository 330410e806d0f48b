"""Webhook URLs cannot reach the operator's network (SSRF): refused at registration, refused
again at delivery (DNS can change after registration), allowed only by the operator setting
``webhook_allow_private`` that the other operations tests turn on for their loopback receiver."""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lerna.server.models_ops import Webhook, WebhookDelivery
from lerna.server.webhook_worker import destination, pin, pinned
from tests.ops.conftest import OpsClient, Receiver, make_settings
from tests.ops.rounds import run_round
from tests.ops.services import self_signed_cert

PRIVATE_URLS = [
    "http://127.0.0.1:{port}/hook",
    "http://localhost:{port}/hook",  # a name that resolves to loopback
    "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
    "http://10.1.2.3/x",
    "http://192.168.0.10/x",
    "http://172.16.5.5/x",
    "http://100.64.0.1/x",  # carrier-grade NAT (shared address space)
    "http://0.0.0.0/x",
    "http://[::1]/x",
    "http://[::ffff:127.0.0.1]/x",  # IPv4-mapped IPv6
    "http://[fe80::1]/x",
    "http://[fd00::1]/x",
    "http://224.0.0.1/x",
    "http://2130706433/x",  # 127.0.0.1 spelled as one number
    "http://0x7f.1/x",  # and in hex, short form
    "http://127.1:{port}/x",
]


@pytest.fixture
def guarded(database_url: str, tmp_path: Path) -> Iterator[OpsClient]:
    """The FL-API with the production default: private destinations refused."""
    from lerna.server.app import create_app

    app = create_app(make_settings(database_url, tmp_path / "data", webhook_allow_private=False))
    with TestClient(app) as client:
        yield OpsClient(client, app)
    app.state.engine.dispose()


def test_private_destinations_are_refused_at_registration(
    guarded: OpsClient, receiver: Receiver
) -> None:
    headers, app, _ = guarded.setup_task()
    url = f"/api/apps/{app['id']}/webhooks"
    port = receiver.url.split(":")[2].split("/")[0]
    for target in PRIVATE_URLS:
        body = {"kind": "slack", "url": target.format(port=port), "events": ["round_failed"]}
        r = guarded.http.post(url, json=body, headers=headers)
        assert r.status_code == 422, (target, r.text)
        assert r.json()["code"] == "forbidden_destination", r.text
        assert "non-public address" in r.json()["message"]
    assert guarded.http.get(url, headers=headers).json() == []
    assert receiver.requests == []


def test_public_and_unresolvable_hosts_are_accepted_and_patch_is_checked(
    guarded: OpsClient,
) -> None:
    headers, app, _ = guarded.setup_task()
    url = f"/api/apps/{app['id']}/webhooks"
    public = {"kind": "slack", "url": "http://93.184.215.14/x", "events": ["round_failed"]}
    # .invalid never resolves: accepted now, resolved and checked at every delivery
    later = {**public, "url": "http://hooks.lerna.invalid/x"}
    ids = []
    for body in (public, later):
        r = guarded.http.post(url, json=body, headers=headers)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = guarded.http.patch(
        f"{url}/{ids[0]}", json={"url": "http://169.254.169.254/x"}, headers=headers
    )
    assert r.status_code == 422 and r.json()["code"] == "forbidden_destination"
    listed = guarded.http.get(url, headers=headers).json()
    assert [h["url"] for h in listed] == [public["url"], later["url"]]


def _store_hook(api: OpsClient, app_id: int, url: str) -> int:
    """A webhook whose host resolved to a public address when it was registered and to
    loopback now (DNS changed): written directly, as registration would have accepted it."""
    with api.app.state.session_factory() as session, session.begin():
        hook = Webhook(app_id=app_id, kind="slack", url=url, events=["round_completed"])
        session.add(hook)
        session.flush()
        return hook.id


def _deliveries(api: OpsClient, hook_id: int) -> list[Any]:
    with api.app.state.session_factory() as session:
        return list(
            session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook_id))
        )


def test_delivery_rechecks_the_destination(guarded: OpsClient, receiver: Receiver) -> None:
    headers, app, task = guarded.setup_task(cohort_size=1, min_participants=1, upload_seconds=600)
    hook_id = _store_hook(guarded, app["id"], receiver.url.replace("127.0.0.1", "localhost"))
    run_round(guarded, app, task, devices=1)

    deadline = time.monotonic() + 10
    rows = _deliveries(guarded, hook_id)
    while time.monotonic() < deadline and not (rows and rows[0].attempts >= 2):
        time.sleep(0.05)
        rows = _deliveries(guarded, hook_id)
    assert len(rows) == 1 and rows[0].attempts >= 2, "the worker should have tried and retried"
    assert rows[0].state in ("pending", "failed") and rows[0].last_status is None
    assert rows[0].last_error.startswith("refused: localhost resolves to 127.0.0.1")
    assert receiver.requests == []  # nothing reached the loopback receiver

    test_url = f"/api/apps/{app['id']}/webhooks/{hook_id}/test"
    result = guarded.http.post(test_url, headers=headers).json()
    assert result["delivered"] is False and result["status_code"] is None
    assert result["error"].startswith("refused: localhost resolves to 127.0.0.1")
    assert receiver.requests == []


def test_the_operator_setting_allows_a_local_receiver(ops: OpsClient, receiver: Receiver) -> None:
    """The same name and receiver, with ``webhook_allow_private`` on (as in ``make_settings``)."""
    headers, app, task = ops.setup_task(cohort_size=1, min_participants=1, upload_seconds=600)
    local = receiver.url.replace("127.0.0.1", "localhost")
    body = {"kind": "slack", "url": local, "events": ["round_completed"]}
    r = ops.http.post(f"/api/apps/{app['id']}/webhooks", json=body, headers=headers)
    assert r.status_code == 201, r.text
    run_round(ops, app, task, devices=1)
    assert len(receiver.wait_for(1)) == 1


def test_a_delivery_connects_to_the_address_it_checked() -> None:
    url, headers, extensions = destination("https://u:p@93.184.215.14:8443/a/b?c=1", False)
    assert url == "https://u:p@93.184.215.14:8443/a/b?c=1"
    assert headers == {"Host": "93.184.215.14:8443", "Connection": "close"}
    assert extensions == {"sni_hostname": "93.184.215.14"}
    six = ipaddress.ip_address("2606:2800:220:1::1")
    assert pin("http://hooks.example.com/x?y=2", six) == "http://[2606:2800:220:1::1]/x?y=2"
    assert pin("https://h.example.com:444/", ipaddress.ip_address("1.1.1.1")) == (
        "https://1.1.1.1:444/"
    )
    # with the operator setting, URLs go out untouched (no resolution, no pinning)
    assert destination("http://localhost:1/x", True) == ("http://localhost:1/x", {}, {})


def test_a_pinned_https_request_keeps_the_name_for_host_sni_and_certificate(
    tmp_path: Path,
) -> None:
    """Sent to the checked address, verified against the URL's name: a certificate for another
    name fails, so pinning never weakens TLS."""
    cert, key = self_signed_cert(tmp_path)  # for localhost and 127.0.0.1
    seen: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen["host"] = self.headers["Host"]
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def note_sni(_sock: Any, name: str | None, _ctx: Any) -> None:
        seen["sni"] = name

    context.sni_callback = note_sni
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    loopback = ipaddress.ip_address("127.0.0.1")
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert))) as client:
            url, headers, extensions = pinned(f"https://localhost:{port}/hook", loopback)
            assert url == f"https://127.0.0.1:{port}/hook"
            r = client.post(url, content=b"{}", headers=headers, extensions=extensions)
            assert r.status_code == 204
            assert seen == {"host": f"localhost:{port}", "sni": "localhost"}
            url, headers, extensions = pinned(f"https://hooks.example.com:{port}/", loopback)
            with pytest.raises(httpx.ConnectError, match="certificate"):
                client.post(url, content=b"{}", headers=headers, extensions=extensions)
    finally:
        server.shutdown()
        server.server_close()
