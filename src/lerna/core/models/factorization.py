"""Federated collaborative filtering: implicit-feedback ALS split between server and devices.

Each user has a vector ``u`` that lives only on the device; each item a vector ``v_i`` whose
last coordinate acts as its bias. A user's loss is the weighted implicit-feedback objective of
Hu, Koren and Volinsky (2008) over *all* items: every item counts as a weak negative, items
the user chose (label 1) as positives with confidence ``1 + alpha``, items shown and not chosen
(label 0) as negatives with confidence ``1 + neg_weight``. Item vectors are pulled towards
what their metadata predicts, ``[x_i, 1] F`` (the metadata-feature embeddings), which is also
how items without an id in the model (new candidates) are scored.

Why this shape (Ammad-ud-din et al. 2019, "Federated Collaborative Filtering"; Singhal et al.
2021, "Federated Reconstruction"):

* given the items, the user vector is the minimiser of a ridge problem, so the device *solves*
  it in closed form (one d x d system, about a millisecond) and never has to send it;
* given the users, each item vector is the minimiser of another ridge problem whose data are
  sums over users: ``item_sum`` (sum of u over the users who chose the item), ``item_sq`` (the
  same of u*u), ``item_count``, ``neg_count``, ``gram`` (sum of u u^T over all users) and
  ``user_count``. These sums are the global weights. A device uploads its own terms, FedAvg
  (weighted by ``num_examples``) adds them up, and every device derives the item vectors from
  them. One federated round is one ALS sweep, so a handful of rounds reach what centralized
  ALS reaches; gradient FedAvg on item embeddings needs hundreds.

The only approximation is in each item's Hessian: the sum of ``u u^T`` over its positive users
is rebuilt from their mean and per-coordinate second moment (rank one plus diagonal), which
keeps the upload at a few arrays of catalogue size instead of one d x d matrix per item.

Sampled cohorts (``differential``, on outside the DP form): a round hears from a sample, yet
the sums must cover the fleet. So a device remembers in its personal state what its last upload
added and proposes the *change* of its terms: the sums are every user's latest terms, drawn this
round or not (incremental ALS with stale users). FedAvg multiplies a per-example proposal by
``n_k`` and divides by the cohort's total ``W``: a round adds ``sum of changes / W``, and since
the item solve uses only ratios, ``W``'s scale needs no sampling rate. Under DP (weight 1, fixed
denominator) the changes would add up exactly, but the DP form keeps replacing: differential
sums keep every round's noise (measured worse; docs/models.md, with the figures).

Version 0's pretend users outweigh real per-example sums ~100-fold, so the first real sums
replace them (blending them in with ``memory`` < 1 collapsed sampled cohorts); the per_user
form keeps them as the prior that clipping leaves in.

After ``fit_local`` the global weights hold this device's proposal (what differs from the
downloaded version is the upload); scoring keeps using the version that was downloaded, and
``personalize`` re-solves the user vector against it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import Field

from lerna.core.models.base import Arrays, Examples, FitResult, Hyper, Model

STATISTICS = ("gram", "item_count", "item_sq", "item_sum", "neg_count", "user_count")
POS, NEG = 1, 2  # codes of a user's items in its remembered contribution


_SHARED_SOLVES: dict[bytes, np.ndarray] = {}
_SHARED_LIMIT = 4


def _digest(weights: Mapping[str, np.ndarray], hyper: str) -> bytes:
    h = hashlib.blake2b(hyper.encode(), digest_size=16)
    for name in sorted(weights):
        h.update(name.encode())
        h.update(np.ascontiguousarray(weights[name]).tobytes())
    return h.digest()


def _remember(key: bytes, solved: np.ndarray) -> None:
    if len(_SHARED_SOLVES) >= _SHARED_LIMIT:
        _SHARED_SOLVES.pop(next(iter(_SHARED_SOLVES)))
    _SHARED_SOLVES[key] = solved


class FactorizationHyper(Hyper):
    dim: int = Field(32, ge=1, le=256)
    alpha: float = Field(4.0, ge=0, le=1000, description="extra confidence of a positive")
    neg_weight: float = Field(1.0, ge=0, le=1000, description="extra confidence of a negative")
    user_l2: float = Field(2.0, gt=0, le=1e4)
    item_l2: float = Field(0.05, gt=0, le=1e3, description="item L2 per user in the sums")
    feature_l2: float = Field(1.0, gt=0, le=1e4)
    memory: float = Field(
        1.0, gt=0, le=1, description="replace mode only: weight of this round's sums vs. older"
    )
    differential: bool | None = Field(
        None,
        description="propose the change of this user's terms since its last upload (False: a"
        " round replaces the sums with its cohort's). None: on except in the per_user form",
    )
    init_scale: float = Field(0.1, gt=0, le=10)
    per_user: bool = Field(
        False,
        description="propose per-user (not per-example) statistics, for weight-1 devices: the"
        " form whose per-device contribution clipping bounds, for DP. Devices switch it on"
        " themselves when the task's privacy adds noise (lerna.sdk.trainer.training_hyper;"
        " docs/privacy.md)",
    )


class FactorizationModel(Model):
    kind = "fcf"
    Hyper = FactorizationHyper
    hyper: FactorizationHyper

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        s, dd = self.spec, self.hyper.dim + 1
        rng = np.random.default_rng(self.seed)
        item_sum = np.zeros((s.n_items, dd), np.float32)
        item_sum[:, :-1] = rng.normal(0.0, self.hyper.init_scale / np.sqrt(dd), (s.n_items, dd - 1))
        # Version 0 is one pretend user per example with identity gram: random item vectors.
        self._serving: Arrays = {
            "feature_emb": np.zeros((s.n_item_features + 1, dd), np.float32),
            "gram": np.eye(dd, dtype=np.float32),
            "item_count": np.zeros(s.n_items, np.float32),
            "item_sq": np.zeros((s.n_items, dd), np.float32),
            "item_sum": item_sum,
            "neg_count": np.zeros(s.n_items, np.float32),
            "user_count": np.ones(1, np.float32),
        }
        self._proposal = {k: v.copy() for k, v in self._serving.items()}
        self.user = np.zeros(dd - 1, dtype=np.float32)
        # What this user's upload last added to the sums (row 0, "committed") and what the
        # latest fit proposed (row 1, "pending", against version digest ``sent_version``).
        self.sent = np.zeros((2, dd), np.float32)  # u' = [u, 1]; all zero: nothing sent
        self.sent_items = np.zeros((2, s.n_items), np.int8)  # POS, NEG or 0 per item
        self.sent_version = np.zeros(16, np.uint8)
        # Derived from the downloaded version and the catalog, shared by a round's local fits.
        self._derived: dict[str, np.ndarray] = {}
        self._derived_key: tuple[int, int] | None = None
        self._exact: np.ndarray | None = None  # set only by fit_central
        self._solved = np.zeros((0, dd))
        self._solved_version = -1
        self._version = 0
        self._digest = _digest(self._serving, self.hyper.model_dump_json())

    # -- state ---------------------------------------------------------------------------
    def global_weights(self) -> Arrays:
        return {k: v.copy() for k, v in self._proposal.items()}

    def set_global_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        checked = self._check_weights(weights, self._serving)
        if not all(np.array_equal(checked[k], self._serving[k]) for k in checked):
            self._version += 1
            self._exact = None
            self._digest = _digest(checked, self.hyper.model_dump_json())
        self._serving = checked
        self._proposal = {k: v.copy() for k, v in checked.items()}

    def personal_state(self) -> Arrays:
        return {
            "sent": self.sent.copy(),
            "sent_items": self.sent_items.copy(),
            "sent_version": self.sent_version.copy(),
            "user": self.user.copy(),
        }

    def set_personal_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Also takes a state saved before differential uploads (``user`` only): nothing sent."""
        expected = self.personal_state() if "sent" in state else {"user": self.user}
        checked = self._check_weights(state, expected)
        self.reset_personal_state()
        for name, value in checked.items():
            setattr(self, name, value)

    def reset_personal_state(self) -> None:
        self.user = np.zeros_like(self.user)
        self.sent = np.zeros_like(self.sent)
        self.sent_items = np.zeros_like(self.sent_items)
        self.sent_version = np.zeros_like(self.sent_version)

    # -- item side -----------------------------------------------------------------------
    def _with_intercept(self, item_features: np.ndarray) -> np.ndarray:
        x = np.asarray(item_features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.spec.n_item_features:
            raise ValueError(
                f"item_features must have shape (n, {self.spec.n_item_features}), got {x.shape}"
            )
        return np.hstack([x, np.ones((x.shape[0], 1))])

    def _solve_items(self, prior: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Each item's ridge solution from the aggregated sums (the federated ALS item step)."""
        h, st = self.hyper, {k: self._serving[k].astype(np.float64) for k in STATISTICS}
        k_hat = st["user_count"][0]
        ssum, sq = st["item_sum"][items], st["item_sq"][items]
        cnt, neg = st["item_count"][items], st["neg_count"][items]
        safe = np.where(cnt > 0, cnt, 1.0)
        mean_gram = st["gram"] / k_hat
        hess = st["gram"] + h.item_l2 * k_hat * np.eye(ssum.shape[1])
        hess = hess + h.neg_weight * neg[:, None, None] * mean_gram
        rank1 = ssum[:, :, None] * ssum[:, None, :] / safe[:, None, None]
        spread = np.clip(sq - ssum * ssum / safe[:, None], 0.0, None)
        hess = hess + h.alpha * (rank1 + spread[:, :, None] * np.eye(ssum.shape[1]))
        rhs = (1 + h.alpha) * ssum + h.item_l2 * k_hat * prior
        return np.linalg.solve(hess, rhs[:, :, None])[:, :, 0]

    def item_vectors(
        self, item_features: np.ndarray, items: np.ndarray | None = None
    ) -> np.ndarray:
        """Item vectors (float64) of the downloaded version; ``items`` -1 means metadata only.

        Without ``items`` the rows of ``item_features`` are the whole catalog. An item's vector
        is solved once per version and kept: a round's local fits and every scoring reuse it.
        """
        idx = np.arange(self.spec.n_items) if items is None else np.asarray(items, np.int64)
        x1 = self._with_intercept(item_features)
        if idx.shape != (x1.shape[0],):
            raise ValueError("items and item_features must have one entry per candidate")
        if np.any(idx >= self.spec.n_items) or np.any(idx < -1):
            raise ValueError(f"item indices must be -1 or in [0, {self.spec.n_items})")
        v = x1 @ self._serving["feature_emb"].astype(np.float64)
        known = idx >= 0
        if self._exact is not None:
            v[known] = self._exact[idx[known]]
            return v
        if self._solved_version != self._version:
            self._solved = np.full((self.spec.n_items, v.shape[1]), np.nan)
            self._solved_version = self._version
        need = known & np.isnan(self._solved[np.where(known, idx, 0), 0])
        full_catalog = idx.shape[0] == self.spec.n_items and bool(
            np.all(idx == np.arange(idx.shape[0]))
        )
        if need.any() and full_catalog:
            # The whole catalog for one version is the same for every model holding it: solve it
            # once per process and share it (a simulated fleet, a server evaluating, tests).
            key = self._digest + hashlib.blake2b(x1.tobytes(), digest_size=16).digest()
            shared = _SHARED_SOLVES.get(key)
            if shared is None:
                shared = self._solve_items(v, idx)
                _remember(key, shared)
            self._solved = shared.copy()
            need = np.zeros_like(need)
        if need.any():
            self._solved[idx[need]] = self._solve_items(v[need], idx[need])
        v[known] = self._solved[idx[known]]
        return v

    def _derived_for(self, item_features: np.ndarray) -> dict[str, np.ndarray]:
        key = (self._version, id(item_features))
        if key != self._derived_key:
            self._derived, self._derived_key = {}, key
        return self._derived

    def _feature_fit(self, x1: np.ndarray, v: np.ndarray) -> np.ndarray:
        """The F minimising ``|V - X1 F|^2 + feature_l2 |F|^2``: metadata explains what it can."""
        a = x1.T @ x1 + self.hyper.feature_l2 * np.eye(x1.shape[1])
        return np.asarray(np.linalg.solve(a, x1.T @ v))

    # -- user side -----------------------------------------------------------------------
    def solve_user(self, v: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
        """Closed-form ridge solution of the user vector against item vectors ``v``."""
        h, d = self.hyper, self.hyper.dim
        e, b = v[:, :d], v[:, d]
        ep, en = e[pos], e[neg]
        a = e.T @ e + h.alpha * ep.T @ ep + h.neg_weight * en.T @ en + h.user_l2 * np.eye(d)
        rhs = (1 + h.alpha) * ep.sum(axis=0) - e.T @ b - h.alpha * ep.T @ b[pos]
        rhs -= h.neg_weight * en.T @ b[neg]
        return np.asarray(np.linalg.solve(a, rhs))

    def user_loss(self, v: np.ndarray, u: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
        """The user's weighted squared loss plus the ridge on ``u`` (what ``solve_user`` minimises)."""
        conf, target = np.ones(v.shape[0]), np.zeros(v.shape[0])
        conf[neg] += self.hyper.neg_weight
        conf[pos] += self.hyper.alpha
        target[pos] = 1.0
        r = v @ np.append(u, 1.0) - target
        return float(conf @ (r * r) + self.hyper.user_l2 * u @ u)

    def personalize(self, examples: Examples, item_features: np.ndarray) -> None:
        pos, neg = split_labels(examples)
        self.user = self.solve_user(self.item_vectors(item_features), pos, neg).astype(np.float32)

    # -- training ------------------------------------------------------------------------
    def fit_local(
        self, examples: Examples, item_features: np.ndarray, rng: np.random.Generator
    ) -> FitResult:
        del rng  # both solves are closed-form: nothing random
        n_k = len(examples)
        if n_k == 0:
            return FitResult(0, 0.0, 0)
        v = self.item_vectors(item_features)
        pos, neg = split_labels(examples)
        u = self.solve_user(v, pos, neg)
        self.user = u.astype(np.float32)
        u1 = np.append(u, 1.0)
        items = np.zeros(self.spec.n_items, np.int8)
        items[pos], items[neg] = POS, NEG
        h = self.hyper
        # FedAvg weighs a device by n_k, DP by 1 (then over the fixed expected cohort).
        scale = 1.0 if h.per_user else 1.0 / n_k
        # Version 0's pretend users weigh as much as the whole fleet in per-example form: the
        # first sums with real users replace them. The per_user form keeps them as the prior
        # that clipping leaves in (measured better under DP noise; docs/models.md).
        empty = not (np.any(self._serving["item_count"]) or np.any(self._serving["neg_count"]))
        keep = 0.0 if empty and not h.per_user else 1.0
        if self.differential:
            # The contribution as it will be remembered (float32), so that it is removed exactly.
            change = self._change(np.append(self.user, np.float32(1.0)), items, empty)
            proposal = {
                name: keep * self._serving[name] + scale * change[name] for name in STATISTICS
            }
        else:
            mine, rho = user_terms(u1, items), h.memory if keep else 1.0
            proposal = {
                name: (1 - rho) * self._serving[name] + rho * scale * mine[name]
                for name in STATISTICS
            }
        derived = self._derived_for(item_features)
        if "f" not in derived:
            derived["f"] = self._feature_fit(self._with_intercept(item_features), v)
        proposal["feature_emb"] = derived["f"]
        self._proposal = {k: np.asarray(a, np.float32) for k, a in proposal.items()}
        loss = self.user_loss(v, u, pos, neg) / n_k
        return FitResult(num_examples=n_k, loss=loss, epochs=1)

    @property
    def differential(self) -> bool:
        """Whether uploads are changes of this user's contribution (``hyper.differential``)."""
        chosen = self.hyper.differential
        return not self.hyper.per_user if chosen is None else chosen

    def _change(self, u1: np.ndarray, items: np.ndarray, empty: bool) -> dict[str, np.ndarray]:
        """This user's new contribution minus the one already in the downloaded sums.

        A fit proposed against an older version than the downloaded one is taken to be in the
        sums (its round published). Refitting on the same version (several local epochs, a
        round that aborted) replaces the pending proposal and leaves the committed one. An
        upload lost from a round that still published thus leaves an error the size of how far
        the user moved (measured small: docs/models.md). Sums that hold no user (a new version
        0) hold nothing of this one either.
        """
        version = np.frombuffer(self._digest, np.uint8)
        if empty:
            self.sent[0], self.sent_items[0] = 0.0, 0
        elif np.any(self.sent[1]) and not np.array_equal(self.sent_version, version):
            self.sent[0], self.sent_items[0] = self.sent[1], self.sent_items[1]
        new = user_terms(u1, items)
        old = user_terms(self.sent[0], self.sent_items[0])
        self.sent[1], self.sent_items[1], self.sent_version = u1, items, version.copy()
        return {name: new[name] - old[name] for name in STATISTICS}

    def fit_central(
        self,
        examples_by_user: Sequence[Examples],
        item_features: np.ndarray,
        rng: np.random.Generator,
        iterations: int = 15,
    ) -> None:
        """Exact ALS on everyone's data at once: the upper bound the federated rounds chase."""
        del rng
        h, dd = self.hyper, self.hyper.dim + 1
        x1 = self._with_intercept(item_features)
        labels = [split_labels(ex) for ex in examples_by_user]
        rows = [
            (items, np.full(items.size, user), np.full(items.size, is_pos))
            for user, (pos, neg) in enumerate(labels)
            for items, is_pos in ((pos, True), (neg, False))
        ]
        item_of = np.concatenate([r[0] for r in rows]).astype(np.int64)
        order = np.argsort(item_of, kind="stable")
        user_of = np.concatenate([r[1] for r in rows]).astype(np.int64)[order]
        pos_of = np.concatenate([r[2] for r in rows]).astype(bool)[order]
        bounds = np.searchsorted(item_of[order], np.arange(self.spec.n_items + 1))
        weight_of = np.where(pos_of, h.alpha, h.neg_weight)
        n_users = len(examples_by_user)
        v = self.item_vectors(item_features)
        f = self._serving["feature_emb"].astype(np.float64)
        for _ in range(iterations):
            users = np.stack([self.solve_user(v, p, n) for p, n in labels])
            u1 = np.hstack([users, np.ones((n_users, 1))])
            f = self._feature_fit(x1, v)
            prior = x1 @ f
            base = u1.T @ u1 + h.item_l2 * n_users * np.eye(dd)
            v = np.empty_like(v)
            for i in range(self.spec.n_items):
                sl = slice(bounds[i], bounds[i + 1])
                ur, wt = u1[user_of[sl]], weight_of[sl]
                rhs = h.item_l2 * n_users * prior[i] + (1 + h.alpha) * ur[pos_of[sl]].sum(axis=0)
                v[i] = np.linalg.solve(base + (ur * wt[:, None]).T @ ur, rhs)
        self.set_global_weights({**self._serving, "feature_emb": f.astype(np.float32)})
        self._exact = v

    def score(
        self, context: np.ndarray, item_features: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        del context  # this model ranks by taste; the logistic model covers context
        v = self.item_vectors(item_features, np.asarray(items, np.int64))
        out: np.ndarray = (v @ np.append(self.user.astype(np.float64), 1.0)).astype(np.float32)
        return out


def user_terms(u1: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
    """One user's terms of the sums, from ``u' = [u, 1]`` (all zero: no user) and item codes."""
    u1 = np.asarray(u1, np.float64)
    pos = (items == POS).astype(np.float64)
    return {
        "gram": np.outer(u1, u1),
        "item_count": pos * u1[-1],
        "item_sq": pos[:, None] * (u1 * u1),
        "item_sum": pos[:, None] * u1,
        "neg_count": (items == NEG) * u1[-1],
        "user_count": u1[-1:].copy(),
    }


def split_labels(examples: Examples) -> tuple[np.ndarray, np.ndarray]:
    """Distinct positive items, and distinct negatives that were never also a positive."""
    items = np.asarray(examples.items, dtype=np.int64)
    labels = np.asarray(examples.labels)
    pos = np.unique(items[labels > 0.5])
    neg = np.setdiff1d(np.unique(items[labels <= 0.5]), pos)
    return pos, neg
