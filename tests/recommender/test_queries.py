"""Query behaviour over HTTP on the hand-checked purchases (see helpers.BUYS).

Expected orders were worked out by hand: LLR(a,b)=8.32 (3 of 6 users did both, no one did one
alone), LLR(c,d)=3.82, LLR(a,c)=LLR(b,c)=0.68; popularity a=b=c=3, d=2, e=1.
"""

from __future__ import annotations

import pytest

from .helpers import Harness, buy_events, g_squared, iso


def test_user_query_scores_correlators_then_backfills_by_popularity(shop: Harness) -> None:
    result = shop.query(user="u1")
    assert [r["item"] for r in result] == ["c", "d", "e"]  # a, b are u1's own purchases
    assert result[0]["score"] == pytest.approx(2 * g_squared(1, 2, 2, 1))
    assert [r["score"] for r in result[1:]] == [0.0, 0.0]
    assert shop.items(user="u4") == ["a", "b", "e"]  # a, b tie on score and popularity: by id


def test_item_and_item_set_queries(shop: Harness) -> None:
    assert shop.items(item="c") == ["d", "a", "b", "e"]
    assert shop.items(item="c", returnSelf=True) == ["d", "a", "b", "c", "e"]
    assert shop.items(itemSet=["a", "d"]) == ["b", "c", "e"]


def test_unknown_user_gets_popular_items(shop: Harness) -> None:
    assert shop.items(user="stranger") == ["a", "b", "c", "d", "e"]


def test_num_and_from_page_through_results(shop: Harness) -> None:
    assert shop.items(user="stranger", num=2) == ["a", "b"]
    assert shop.items(user="stranger", num=2, **{"from": 2}) == ["c", "d"]
    assert shop.items(user="stranger", num=2, **{"from": 10}) == []


def test_new_behaviour_counts_without_retraining(shop: Harness) -> None:
    assert shop.items(user="newbie", num=1) == ["a"]
    shop.send(buy_events({"newbie": ["d"]}))
    assert shop.items(user="newbie", num=1) == ["c"]  # d's only correlator


def test_blacklists(shop: Harness) -> None:
    assert shop.items(user="u1", blacklistItems=["c"]) == ["d", "e"]
    shop.create("open", num=10, blacklistIndicators=[])
    shop.send(buy_events(), "open")
    shop.train("open")
    assert shop.items("open", user="u1")[:3] == ["a", "b", "c"]  # own items come back


def test_rules_boost_filter_and_exclude(shop: Harness) -> None:
    shop.set_item("a", color=["red"], size="L")
    shop.set_item("b", color=["blue", "red"], size="M")
    shop.set_item("c", color=["green"], size="L")
    shop.set_item("d", color=["blue"], size=5)
    stranger = {"user": "stranger"}
    # must match: OR within a rule
    assert shop.items(**stranger, rules=[{"name": "color", "values": ["red", "green"], "bias": -1}]) == ["a", "b", "c"]  # fmt: skip
    # AND across rules
    rules = [{"name": "color", "values": ["red"], "bias": -1}, {"name": "size", "values": ["M"], "bias": -1}]  # fmt: skip
    assert shop.items(**stranger, rules=rules) == ["b"]
    # exclude
    assert shop.items(**stranger, rules=[{"name": "color", "values": ["blue"], "bias": 0}]) == ["a", "c", "e"]  # fmt: skip
    # numbers match whatever their spelling
    assert shop.items(**stranger, rules=[{"name": "size", "values": ["5"], "bias": -1}]) == ["d"]
    # boost: green outranks the more popular items in backfill, and scales personal scores
    assert shop.items(**stranger, rules=[{"name": "color", "values": ["green"], "bias": 3}])[0] == "c"  # fmt: skip
    boosted = shop.query(user="u4", rules=[{"name": "color", "values": ["blue"], "bias": 2}])
    assert [r["item"] for r in boosted][:2] == ["b", "a"]
    assert boosted[0]["score"] == pytest.approx(2 * g_squared(1, 2, 2, 1))


def test_backfill_never_runs_short_while_items_pass(shop: Harness) -> None:
    shop.set_item("e", tag="x")
    shop.set_item("new-item", tag="x")  # in no event, no model: still in the catalogue
    result = shop.items(user="u1", rules=[{"name": "tag", "values": ["x"], "bias": -1}])
    assert result == ["e", "new-item"]


def test_properties_come_back_with_results(shop: Harness) -> None:
    shop.set_item("c", color=["green"], price=9.5, onSale=True)
    assert shop.query(user="u1", num=1)[0]["props"] == {"color": ["green"], "price": 9.5, "onSale": True}  # fmt: skip


def test_date_range_and_current_date(harness: Harness) -> None:
    harness.create(num=10, availableDateName="available", expireDateName="expires")
    harness.send(buy_events())
    harness.set_item("a", published="2024-01-10T00:00:00Z", available="2024-02-01T00:00:00Z")
    harness.set_item("b", published="2024-03-10T00:00:00Z", expires="2024-03-01T00:00:00Z")
    harness.set_item("c", published="2024-05-10T00:00:00Z")
    harness.train()
    window = {"name": "published", "after": "2024-01-01T00:00:00Z", "before": "2024-04-01T00:00:00Z"}  # fmt: skip
    # in the window and live on 2024-02-15: a (available since 02-01), b (expires 03-01)
    assert harness.items(user="x", dateRange=window, currentDate="2024-02-15T00:00:00Z") == ["a", "b"]  # fmt: skip
    assert harness.items(user="x", dateRange=window, currentDate="2024-01-15T00:00:00Z") == ["b"]
    assert harness.items(user="x", dateRange=window, currentDate="2024-03-15T00:00:00Z") == ["a"]
    # with no currentDate, now is used: b has expired, d and e have no dates and are live
    assert harness.items(user="x") == ["a", "c", "d", "e"]


def test_secondary_indicator_changes_results(harness: Harness) -> None:
    buys = {"u1": ["a"], "u2": ["a"], "u3": ["b"], "u4": ["b"]}
    views = {"u1": ["v1"], "u2": ["v1"], "u3": ["v2"], "u4": ["v2"], "fan": ["v2"]}
    for engine, indicators in (("plain", [{"name": "buy"}]), ("cross", [{"name": "buy"}, {"name": "view"}])):  # fmt: skip
        harness.create(engine, indicators=indicators)
        harness.send(buy_events(buys) + buy_events(views, "view"), engine)
        harness.train(engine)
    assert harness.items("plain", user="fan", num=1) == ["a"]  # popularity tie, by id
    assert harness.items("cross", user="fan", num=1) == ["b"]  # v2 viewers buy b


def test_aliases_feed_their_indicator(harness: Harness) -> None:
    harness.create(indicators=[{"name": "buy", "aliases": ["purchase"]}])
    harness.send(buy_events() + buy_events({"late": ["d"]}, "purchase"))
    harness.train()
    assert harness.items(user="late", num=1) == ["c"]


def test_user_and_item_bias_weigh_the_two_parts(shop: Harness) -> None:
    # u4's history (c, d) gives a 0.68; the query item b gives a 8.32
    ab, ac = g_squared(3, 0, 0, 3), g_squared(1, 2, 2, 1)
    for user_bias, item_bias in ((1.0, 1.0), (1.0, 2.0), (0.0, 1.0), (3.0, 0.0)):
        top = shop.query(user="u4", item="b", userBias=user_bias, itemBias=item_bias, num=1)
        assert top[0]["item"] == "a"
        assert top[0]["score"] == pytest.approx(user_bias * ac + item_bias * ab)


def test_event_time_orders_history(harness: Harness) -> None:
    harness.create(maxQueryEvents=1)
    harness.send(buy_events())
    harness.train()
    harness.send(
        [
            {"event": "buy", "entityType": "user", "entityId": "z", "targetEntityId": t,
             "eventTime": iso(2_000_000_000 + k)}
            for k, t in enumerate(["a", "d"])
        ]
    )  # fmt: skip
    # with maxQueryEvents=1 only the newest event (d) is history: c, not b (a's correlator)
    assert harness.items(user="z", num=1) == ["c"]
