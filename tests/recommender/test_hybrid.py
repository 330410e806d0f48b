"""lerna.sim.hybrid on a slice of MovieLens-100K: the real recommender's candidates, the real
federated model, and the SDK's fuse."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from lerna.recommender.catalog import ItemCatalog
from lerna.recommender.cco import EventTable, train_cco
from lerna.recommender.config import AlgorithmConfig
from lerna.recommender.query import InstalledModel, recommend
from lerna.recommender.schemas import Query
from lerna.sim import movielens
from lerna.sim.evaluation import Prepared, prepare
from lerna.sim.hybrid import device_scores, evaluate_hybrid, server_events

SCORED = {"normalizeHistory": True, "targetDamping": 0.5, "popularityWeight": 0.2}


@pytest.fixture(scope="module")
def prepared() -> tuple[Prepared, movielens.MovieLens]:
    try:
        data = movielens.load()
    except movielens.DatasetMissingError:
        pytest.skip("MovieLens-100K is not installed")
    return prepare("stratified", devices=120, seed=0, data=data), data


def _server(prepared: Prepared, data: movielens.MovieLens, pool: int) -> list[np.ndarray]:
    events = server_events(prepared, data)
    rows = [(u, i, "rated", t) for u, i, _, t in events]
    rows += [(u, i, "like", t) for u, i, r, t in events if r >= 4]
    config = AlgorithmConfig.model_validate(
        {"indicators": [{"name": "rated"}, {"name": "like"}], "scoring": SCORED,
         "maxQueryEvents": 500}
    )  # fmt: skip
    model = train_cco(config, EventTable.from_rows(rows))
    ids = list(prepared.catalog.item_ids)
    catalog = ItemCatalog()
    catalog.positions(ids)
    installed = InstalledModel.install(model, catalog)
    history: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for u, i, name, _ in sorted(rows, key=lambda r: -r[3]):
        history[u][name].append(i)
    index = {item: n for n, item in enumerate(ids)}
    out = []
    for user in prepared.users:
        seen = history[str(user)]["rated"]
        query = Query(user=str(user), num=pool, blacklistItems=seen)
        result = recommend(config, installed, catalog, query, history[str(user)])
        out.append(np.asarray([index[r.item] for r in result]))
    return out


def test_agreeing_device_leaves_the_server_order(
    prepared: tuple[Prepared, movielens.MovieLens],
) -> None:
    p, data = prepared
    server = _server(p, data, 50)
    agree = np.zeros((len(p.users), len(p.catalog)))
    for u, cands in enumerate(server):
        agree[u, cands] = -np.arange(cands.size)  # same order as the server
    got = evaluate_hybrid(p, agree, server, pool=50)
    assert got["combined"] == got["server"]
    with pytest.raises(ValueError, match="one row per prepared user"):
        evaluate_hybrid(p, agree[:-1], server)


def test_combination_beats_each_alone(prepared: tuple[Prepared, movielens.MovieLens]) -> None:
    p, data = prepared
    got = evaluate_hybrid(p, device_scores(p, rounds=2), _server(p, data, 50), pool=50)
    for metric in ("ndcg@10", "precision@10"):
        assert got["combined"][metric] > max(got["server"][metric], got["device"][metric]), got
