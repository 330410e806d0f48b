"""Events over HTTP: $set/$unset/$delete, bulk import, ignored names, bad input."""

from __future__ import annotations

import json

from .helpers import BUYS, Harness, SyncClient, buy_events


def test_set_merges_and_takes_effect_at_once(shop: Harness) -> None:
    shop.set_item("d", color=["red"])
    shop.set_item("d", size="L")
    red = [{"name": "color", "values": ["red"], "bias": -1}]
    assert shop.query(user="stranger", rules=red)[0]["props"] == {"color": ["red"], "size": "L"}
    shop.set_item("d", color=["blue"])  # replaces the value, and the rule index with it
    assert shop.items(user="stranger", rules=red) == []


def test_unset_removes_named_properties(shop: Harness) -> None:
    shop.set_item("d", color=["red"], size="L")
    shop.send([{"event": "$unset", "entityType": "item", "entityId": "d",
                "properties": {"color": None}}])  # fmt: skip
    assert shop.items(user="stranger", rules=[{"name": "color", "values": ["red"], "bias": -1}]) == []  # fmt: skip
    assert shop.query(user="stranger", rules=[{"name": "size", "values": ["L"], "bias": -1}])[0]["props"] == {"size": "L"}  # fmt: skip


def test_delete_item_drops_its_properties(shop: Harness) -> None:
    shop.set_item("d", color=["red"])
    shop.send([{"event": "$delete", "entityType": "item", "entityId": "d"}])
    assert shop.items(user="stranger", rules=[{"name": "color", "values": ["red"], "bias": -1}]) == []  # fmt: skip


def test_delete_user_drops_its_history(shop: Harness) -> None:
    assert shop.items(user="u1", num=1) == ["c"]
    shop.send([{"event": "$delete", "entityType": "user", "entityId": "u1"}])
    assert shop.items(user="u1", num=2) == ["a", "b"]  # no history left: popularity


def test_unknown_events_are_accepted_and_ignored(shop: Harness) -> None:
    r = shop.client.post("/engines/shop/events", json={"event": "like", "entityType": "user",
                                                         "entityId": "u1", "targetEntityId": "e"})  # fmt: skip
    assert r.status_code == 201
    assert r.json()["ignored"] == 1
    assert shop.items(user="u1") == ["c", "d", "e"]


def test_bulk_import_of_json_lines(harness: Harness) -> None:
    harness.create()
    lines = "\n".join(json.dumps(e) for e in buy_events()) + "\n\n"
    r = harness.client.post("/engines/shop/imports", content=lines.encode(),
                            headers={"Content-Type": "application/x-ndjson"})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["accepted"] == sum(len(v) for v in BUYS.values())  # fmt: skip
    harness.train()
    assert harness.items(user="u1") == ["c", "d", "e"]


def test_bulk_import_is_all_or_nothing(harness: Harness) -> None:
    harness.create()
    lines = [json.dumps(e) for e in buy_events()] + ['{"event": "buy", "entityType": "user"}']
    r = harness.client.post("/engines/shop/imports", content="\n".join(lines).encode())
    assert r.status_code == 400
    assert r.json()["message"] == "line 13: entityId: Field required"
    r = harness.client.get("/engines/shop/entities/u1")
    assert r.status_code == 404  # nothing from the good lines was written


def test_indicator_event_without_target_is_refused_whole(harness: Harness) -> None:
    harness.create()
    bad = {"event": "buy", "entityType": "user", "entityId": "u9"}
    r = harness.client.post("/engines/shop/events", json=[*buy_events({"u8": ["a"]}), bad])
    assert r.status_code == 400
    assert "targetEntityId" in r.json()["message"]
    assert harness.client.get("/engines/shop/entities/u8").status_code == 404


def test_malformed_json_is_a_clear_400(client: SyncClient, harness: Harness) -> None:
    harness.create()
    for url in ("/engines/shop/events", "/engines/shop/queries", "/engines"):
        r = client.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (url, r.text)
        assert r.json()["error"] == "invalid_input"
    r = client.post("/engines/shop/queries", json={"num": -3})
    assert r.status_code == 400
    assert "num" in r.json()["message"]
    r = client.post("/engines/shop/queries", json={"rules": [{"name": "x", "values": []}]})
    assert r.status_code == 400
    r = client.post("/engines/shop/events", json={"event": "$unset", "entityType": "item",
                                                   "entityId": "a"})  # fmt: skip
    assert r.status_code == 400


def test_unknown_engine_is_a_404(client: SyncClient) -> None:
    for method, url in (
        ("POST", "/engines/nope/events"), ("POST", "/engines/nope/queries"),
        ("POST", "/engines/nope/jobs"), ("GET", "/engines/nope"), ("DELETE", "/engines/nope"),
        ("GET", "/engines/nope/entities/u1"),
    ):  # fmt: skip
        body = {"event": "x", "entityType": "user", "entityId": "u"} if "events" in url else {}
        r = (
            client.request(method, url, json=body)
            if method == "POST"
            else client.request(method, url)
        )
        assert r.status_code == 404, (method, url, r.text)
        assert r.json()["error"] == "not_found"
