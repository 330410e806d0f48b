"""The evaluation harness behind `lerna eval`, `lerna demo` and `bench/quality.py`.

It trains a model by an in-process *federated simulation* (rounds of FedAvg over per-device
local fits, a cohort per round, the same arithmetic the FL-API applies to real uploads, minus
HTTP and secure aggregation), trains the same model centrally on all the data (the upper
bound), runs the baselines on the same split, and scores everything with the same metrics.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from lerna.core.features import FeatureSchema, ItemCatalog
from lerna.core.metrics import METRIC_NAMES, ranking_metrics, top_k
from lerna.core.models import Model, ModelSpec, create_model
from lerna.core.models.base import Arrays, Examples
from lerna.sim import baselines
from lerna.sim.movielens import MovieLens, load
from lerna.sim.splits import PROTOCOLS, Protocol, examples_from_ratings, split_user

K = 10
BASELINES = ("popularity", "als", "bpr")
# What the demo uses unless told otherwise (docs/models.md has the measurements).
DEFAULT_MODEL = "fcf"
DEFAULT_HYPER: dict[str, Any] = {}
DEFAULT_ROUNDS = 8


@dataclass(frozen=True)
class Prepared:
    """One protocol's split of the fleet, encoded the way devices encode their data."""

    protocol: Protocol
    schema: FeatureSchema
    catalog: ItemCatalog
    users: list[int]
    examples: list[Examples]  # per device: its training interactions
    relevant: list[np.ndarray]  # per device: catalog indices of held-out relevant items

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(self.schema.context_size, self.schema.items.size, len(self.catalog))

    def interactions(self) -> csr_matrix:
        rows = np.concatenate([np.full(len(ex), u) for u, ex in enumerate(self.examples)])
        cols = np.concatenate([ex.items for ex in self.examples])
        m = csr_matrix(
            (np.ones(rows.size), (rows, cols)), shape=(len(self.users), len(self.catalog))
        )
        m.data[:] = 1.0  # duplicates collapse to one interaction
        return m


def prepare(
    protocol: Protocol,
    devices: int | None = None,
    seed: int = 0,
    data: MovieLens | None = None,
    min_positive_rating: float | None = None,
) -> Prepared:
    """Split every user (or ``devices`` of them, drawn with ``seed``) under ``protocol``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; known: {list(PROTOCOLS)}")
    ml = data or load()
    schema = ml.schema()
    catalog = ItemCatalog.build(schema.items, ml.items)
    index = catalog.index_of()
    users = ml.user_ids()
    if devices is not None:
        if not 1 <= devices <= len(users):
            raise ValueError(f"devices must be between 1 and {len(users)}, got {devices}")
        pick = np.random.default_rng(seed).choice(len(users), size=devices, replace=False)
        users = [users[i] for i in sorted(pick)]
    examples, relevant = [], []
    for user in users:
        split = split_user(ml.ratings, user, protocol)
        examples.append(examples_from_ratings(schema, index, split.train, min_positive_rating))
        relevant.append(np.array([index[i] for i in split.relevant_items()], np.int64))
    return Prepared(protocol, schema, catalog, users, examples, relevant)


def metrics_of(scores: np.ndarray, prepared: Prepared) -> dict[str, float]:
    """Mean metrics over users with at least one relevant held-out item; seen items excluded."""
    totals = dict.fromkeys(METRIC_NAMES, 0.0)
    counted = 0
    for u, rel in enumerate(prepared.relevant):
        if rel.size == 0:
            continue
        ranked = top_k(scores[u], K, exclude=prepared.examples[u].items)
        for name, value in ranking_metrics(ranked, rel.tolist(), K).items():
            totals[name] += value
        counted += 1
    return {name: round(total / max(counted, 1), 4) for name, total in totals.items()}


def train_federated(
    prepared: Prepared,
    kind: str,
    rounds: int,
    hyper: Mapping[str, Any] | None = None,
    cohort: int | None = None,
    seed: int = 0,
    fixed_denominator: bool = False,
    dropout: float = 0.0,
) -> tuple[Model, dict[int, Arrays]]:
    """FedAvg rounds weighted by ``num_examples``, exactly as the FL-API aggregates uploads.

    Each round draws ``cohort`` devices (all of them by default); a device downloads the
    current version, fits locally and contributes ``new_global - old_global``. With
    ``fixed_denominator`` every device weighs 1 and the sum is divided by the cohort size:
    the DP-FedAvg reading of a secure sum (``private_mean``) without clipping or noise.
    ``dropout`` is the chance that a device's upload is lost after it trained (and kept its
    personal state, as the SDK does) while the round still publishes.
    """
    server = create_model(kind, prepared.spec, hyper, seed)
    device = create_model(kind, prepared.spec, hyper, seed)
    features = prepared.catalog.features
    personal: dict[int, Arrays] = {}
    rng, lost = np.random.default_rng(seed), np.random.default_rng([seed, 7])
    n_dev = len(prepared.users)
    for round_no in range(rounds):
        base = server.global_weights()
        picked = (
            np.arange(n_dev)
            if cohort is None or cohort >= n_dev
            else np.sort(rng.choice(n_dev, size=cohort, replace=False))
        )
        acc = {name: np.zeros(arr.shape) for name, arr in base.items()}
        total = 0
        for u in picked:
            device.set_global_weights(base)
            if int(u) in personal:
                device.set_personal_state(personal[int(u)])
            else:
                device.reset_personal_state()
            result = device.fit_local(
                prepared.examples[u], features, np.random.default_rng([seed, round_no, int(u)])
            )
            if result.num_examples == 0:
                continue
            personal[int(u)] = device.personal_state()
            if dropout and lost.random() < dropout:
                continue
            weight = 1 if fixed_denominator else result.num_examples
            for name, arr in device.global_weights().items():
                acc[name] += weight * (arr - base[name]).astype(np.float64)
            total += weight
        if fixed_denominator:
            total = picked.size
        if total:
            server.set_global_weights(
                {name: (base[name] + acc[name] / total).astype(base[name].dtype) for name in base}
            )
    return server, personal


def score_all(
    model: Model, prepared: Prepared, personal: Mapping[int, Arrays] | None = None
) -> np.ndarray:
    """Each device re-fits its personal state to the final version, then scores the catalog."""
    features = prepared.catalog.features
    items = np.arange(len(prepared.catalog))
    scores = np.empty((len(prepared.users), items.size))
    for u, ex in enumerate(prepared.examples):
        if personal is not None and u in personal:
            model.set_personal_state(personal[u])
        else:
            model.reset_personal_state()
        model.personalize(ex, features)
        now = ex.context[-1] if len(ex) else np.zeros(prepared.spec.n_context, np.float32)
        scores[u] = model.score(now, features, items)
    return scores


def train_centralized(
    prepared: Prepared, kind: str, hyper: Mapping[str, Any] | None = None, seed: int = 0
) -> Model:
    model = create_model(kind, prepared.spec, hyper, seed)
    model.fit_central(prepared.examples, prepared.catalog.features, np.random.default_rng(seed))
    return model


def baseline_scores(name: str, prepared: Prepared, seed: int = 0) -> np.ndarray:
    m = prepared.interactions()
    if name == "popularity":
        return baselines.popularity_scores(m)
    if name == "als":
        return baselines.als_scores(m, seed)
    if name == "bpr":
        return baselines.bpr_scores(m, seed)
    raise ValueError(f"unknown baseline {name!r}; known: {list(BASELINES)}")


def evaluate(
    protocol: str,
    model_kind: str = DEFAULT_MODEL,
    rounds: int = DEFAULT_ROUNDS,
    devices: int | None = None,
    seed: int = 0,
    hyper: Mapping[str, Any] | None = None,
    cohort: int | None = None,
    include: Sequence[str] = ("federated", "centralized", *BASELINES),
    data: MovieLens | None = None,
) -> dict[str, dict[str, float]]:
    """Figures for the report's ``final`` section: {"federated": {"ndcg@10": ...}, ...}.

    Each entry also carries ``seconds`` (wall time of its training and scoring).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; known: {list(PROTOCOLS)}")
    unknown = set(include) - {"federated", "centralized", *BASELINES}
    if unknown:
        raise ValueError(f"unknown entries {sorted(unknown)} in include")
    prepared = prepare(protocol, devices, seed, data)
    hyper = DEFAULT_HYPER if hyper is None and model_kind == DEFAULT_MODEL else hyper
    out: dict[str, dict[str, float]] = {}
    for name in include:
        start = time.perf_counter()
        if name == "federated":
            model, personal = train_federated(prepared, model_kind, rounds, hyper, cohort, seed)
            scores = score_all(model, prepared, personal)
        elif name == "centralized":
            scores = score_all(train_centralized(prepared, model_kind, hyper, seed), prepared)
        else:
            scores = baseline_scores(name, prepared, seed)
        out[name] = {
            **metrics_of(scores, prepared),
            "seconds": round(time.perf_counter() - start, 2),
        }
    return out
