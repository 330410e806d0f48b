"""Federated collaborative filtering: implicit-feedback ALS split between server and devices.

Each item is a vector ``v_i = Q_i + x_i F`` (an id embedding plus embeddings of its metadata,
with the last column acting as the item's bias) and each user a vector ``u`` that lives only
on the device. A user's loss is the weighted implicit-feedback objective of Hu, Koren and
Volinsky (2008) over *all* items: every item counts as a weak negative, items the user chose
(label 1) as strong positives (confidence ``1 + alpha``), items shown and not chosen (label 0)
as stronger negatives (``1 + neg_weight``).

Why this shape (Ammad-ud-din et al. 2019, "Federated Collaborative Filtering"; Singhal et al.
2021, "Federated Reconstruction"):

* the user vector is the exact minimiser of a ridge problem given the items, so the device
  *solves* it in closed form (one d x d system, milliseconds) instead of training it, and it
  never has to leave the device;
* the loss is quadratic in each item vector, so one Newton step is the exact ALS item update.
  Its Hessian needs sums over users that no device has; the model keeps their aggregates as
  global statistics (``gram`` = sum of u u^T, ``item_count`` = how many users chose each item,
  ``user_count``) that devices refresh every round through the same weighted averaging as the
  weights. With them each device sends its share of a preconditioned (Newton) step, and FedAvg
  of those shares is one approximate ALS sweep per round: a few rounds suffice, where plain
  gradient FedAvg would need hundreds.

The server's averaging weights each upload by ``num_examples`` (n_k), so a device scales its
share by ``1 / n_k`` and reports statistics per example; ratios of the averaged statistics are
what the Newton step needs, so the scale cancels whatever the cohort.

After ``fit_local`` the global weights hold this device's *contribution* (what differs from the
downloaded version is the upload); scoring keeps using the version that was downloaded, and
``personalize`` re-solves the user vector against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from lerna.core.models.base import Arrays, Examples, FitResult, Hyper, Model


@dataclass(frozen=True)
class _Plan:
    v: np.ndarray  # item vectors of the downloaded version
    feature_emb: np.ndarray  # F refitted to them
    prior: np.ndarray  # [X, 1] F: what metadata alone predicts for each item
    eigvecs: np.ndarray  # eigenvectors of the averaged user gram
    denom: np.ndarray  # per item, the approximate Hessian's eigenvalues
    reg_rotated: np.ndarray  # item_l2 (v - prior), in the eigenbasis
    ready: bool  # statistics exist (not version 0)


class FactorizationHyper(Hyper):
    dim: int = Field(32, ge=1, le=512)
    alpha: float = Field(8.0, ge=0, le=1000, description="extra confidence of a positive")
    neg_weight: float = Field(
        1.0, ge=0, le=1000, description="extra confidence of a shown negative"
    )
    user_l2: float = Field(0.5, gt=0, le=1e4)
    item_l2: float = Field(0.05, gt=0, le=1e3, description="per-user share of item L2")
    feature_l2: float = Field(1.0, gt=0, le=1e4)
    step: float = Field(1.0, gt=0, le=2, description="damping of the federated Newton step")
    init_scale: float = Field(0.1, gt=0, le=10)


class FactorizationModel(Model):
    kind = "fcf"
    Hyper = FactorizationHyper
    hyper: FactorizationHyper

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        s, d = self.spec, self.hyper.dim
        rng = np.random.default_rng(self.seed)
        q = np.zeros((s.n_items, d + 1), dtype=np.float32)
        q[:, :d] = rng.normal(0.0, self.hyper.init_scale / np.sqrt(d), (s.n_items, d))
        self._serving: Arrays = {
            "item_emb": q,
            "feature_emb": np.zeros((s.n_item_features + 1, d + 1), np.float32),
            "gram": np.zeros((d + 1, d + 1), np.float32),
            "item_count": np.zeros(s.n_items, np.float32),
            "user_count": np.zeros(1, np.float32),
        }
        self._proposal: Arrays = {k: v.copy() for k, v in self._serving.items()}
        self.user = np.zeros(d, dtype=np.float32)
        self._cache_key: tuple[int, int] | None = None
        self._version = 0
        self._v = np.zeros((0, d + 1))
        self._gram_e = np.zeros((d, d))
        self._e_b = np.zeros(d)
        self._plan_cache: _Plan | None = None
        self._plan_key: tuple[int, int] | None = None

    # -- state ---------------------------------------------------------------------------
    def global_weights(self) -> Arrays:
        return {k: v.copy() for k, v in self._proposal.items()}

    def set_global_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        checked = self._check_weights(weights, self._serving)
        if not all(np.array_equal(checked[k], self._serving[k]) for k in checked):
            self._version += 1
        self._serving = checked
        self._proposal = {k: v.copy() for k, v in checked.items()}

    def personal_state(self) -> Arrays:
        return {"user": self.user.copy()}

    def set_personal_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.user = self._check_weights(state, {"user": self.user})["user"]

    def reset_personal_state(self) -> None:
        self.user = np.zeros_like(self.user)

    # -- item side -----------------------------------------------------------------------
    def _with_intercept(self, item_features: np.ndarray) -> np.ndarray:
        x = np.asarray(item_features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.spec.n_item_features:
            raise ValueError(
                f"item_features must have shape (n, {self.spec.n_item_features}), got {x.shape}"
            )
        return np.hstack([x, np.ones((x.shape[0], 1))])

    def item_vectors(self, item_features: np.ndarray) -> np.ndarray:
        """``Q + [X, 1] F`` for the whole catalog (float64), cached per downloaded version."""
        key = (self._version, id(item_features))
        if key != self._cache_key:
            if item_features.shape[0] != self.spec.n_items:
                raise ValueError(
                    f"item_features must have one row per catalog item ({self.spec.n_items}), "
                    f"got {item_features.shape[0]}"
                )
            x1 = self._with_intercept(item_features)
            self._v = self._serving["item_emb"].astype(np.float64) + x1 @ self._serving[
                "feature_emb"
            ].astype(np.float64)
            d = self.hyper.dim
            e = self._v[:, :d]
            self._gram_e, self._e_b = e.T @ e, e.T @ self._v[:, d]
            self._cache_key = key
        return self._v

    def _feature_fit(self, x1: np.ndarray, v: np.ndarray) -> np.ndarray:
        """The F minimising ``|V - X1 F|^2 + feature_l2 |F|^2``: metadata explains what it can."""
        a = x1.T @ x1 + self.hyper.feature_l2 * np.eye(x1.shape[1])
        return np.asarray(np.linalg.solve(a, x1.T @ v))

    # -- user side -----------------------------------------------------------------------
    def solve_user(self, v: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
        """Closed-form ridge solution of the user vector against item vectors ``v``."""
        h, d = self.hyper, self.hyper.dim
        if v is self._v:
            gram, e_b = self._gram_e, self._e_b
        else:
            gram, e_b = v[:, :d].T @ v[:, :d], v[:, :d].T @ v[:, d]
        ep, en = v[pos, :d], v[neg, :d]
        a = gram + h.alpha * ep.T @ ep + h.neg_weight * en.T @ en + h.user_l2 * np.eye(d)
        rhs = (1 + h.alpha) * ep.T @ (1.0 - v[pos, d]) - e_b
        rhs += h.alpha * ep.T @ v[pos, d] - h.neg_weight * en.T @ v[neg, d]
        return np.asarray(np.linalg.solve(a, rhs))

    def _residual_weights(self, n: int, pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, ...]:
        conf, target = np.ones(n), np.zeros(n)
        conf[neg] += self.hyper.neg_weight
        conf[pos] += self.hyper.alpha
        target[pos] = 1.0
        return conf, target

    def user_loss(self, v: np.ndarray, u: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
        """The user's weighted squared loss plus the ridge on ``u`` (what ``solve_user`` minimises)."""
        conf, target = self._residual_weights(v.shape[0], pos, neg)
        r = v @ np.append(u, 1.0) - target
        return float(conf @ (r * r) + self.hyper.user_l2 * u @ u)

    def personalize(self, examples: Examples, item_features: np.ndarray) -> None:
        v = self.item_vectors(item_features)
        pos, neg = split_labels(examples)
        self.user = self.solve_user(v, pos, neg).astype(np.float32)

    # -- training ------------------------------------------------------------------------
    def _plan(self, item_features: np.ndarray) -> _Plan:
        """Everything of a local fit that depends only on the downloaded version (cached)."""
        v = self.item_vectors(item_features)
        if self._plan_key == self._cache_key and self._plan_cache is not None:
            return self._plan_cache
        h, s = self.hyper, self._serving
        x1 = self._with_intercept(item_features)
        f_new = self._feature_fit(x1, v)
        prior = x1 @ f_new
        k_hat = float(s["user_count"][0])
        lam, w = np.linalg.eigh(s["gram"].astype(np.float64))
        boost = 1.0 + h.alpha * s["item_count"].astype(np.float64) / max(k_hat, 1e-30)
        denom = boost[:, None] * np.clip(lam, 0.0, None)[None, :] + h.item_l2 * k_hat
        plan = _Plan(v, f_new, prior, w, denom, h.item_l2 * ((v - prior) @ w), k_hat > 0)
        self._plan_cache, self._plan_key = plan, self._cache_key
        return plan

    def fit_local(
        self, examples: Examples, item_features: np.ndarray, rng: np.random.Generator
    ) -> FitResult:
        del rng  # the closed-form solve and the Newton step are deterministic
        h = self.hyper
        n_k = len(examples)
        if n_k == 0:
            return FitResult(0, 0.0, 0)
        plan = self._plan(item_features)
        v = plan.v
        pos, neg = split_labels(examples)
        u = self.solve_user(v, pos, neg)
        self.user = u.astype(np.float32)
        u1 = np.append(u, 1.0)
        conf, target = self._residual_weights(v.shape[0], pos, neg)
        resid = v @ u1 - target
        if plan.ready:
            # grad_i = conf_i resid_i u1 + item_l2 (v_i - prior_i), rotated into the gram's
            # eigenbasis where each item's approximate Hessian is diagonal.
            z = np.outer(conf * resid, u1 @ plan.eigvecs) + plan.reg_rotated
            v_new = v - (h.step / n_k) * ((z / plan.denom) @ plan.eigvecs.T)
        else:  # version 0 has no statistics yet: this round only gathers them
            v_new = v
        count = np.zeros(self.spec.n_items)
        count[pos] = 1.0
        self._proposal = {
            "item_emb": (v_new - plan.prior).astype(np.float32),
            "feature_emb": plan.feature_emb.astype(np.float32),
            "gram": (np.outer(u1, u1) / n_k).astype(np.float32),
            "item_count": (count / n_k).astype(np.float32),
            "user_count": np.array([1.0 / n_k], np.float32),
        }
        loss = float(conf @ (resid * resid) + h.user_l2 * u @ u) / n_k
        return FitResult(num_examples=n_k, loss=loss, epochs=1)

    def fit_central(
        self,
        examples_by_user: Sequence[Examples],
        item_features: np.ndarray,
        rng: np.random.Generator,
        iterations: int = 15,
    ) -> None:
        """Exact ALS on everyone's data at once: the upper bound the federated rounds chase."""
        del rng
        h, d = self.hyper, self.hyper.dim
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
        for _ in range(iterations):
            v = self.item_vectors(item_features)
            users = np.stack([self.solve_user(v, p, n) for p, n in labels])
            u1 = np.hstack([users, np.ones((n_users, 1))])
            f_new = self._feature_fit(x1, v)
            prior = x1 @ f_new
            base = u1.T @ u1 + h.item_l2 * n_users * np.eye(d + 1)
            v_new = np.empty_like(v)
            for i in range(self.spec.n_items):
                sl = slice(bounds[i], bounds[i + 1])
                ur, wt = u1[user_of[sl]], weight_of[sl]
                hess = base + (ur * wt[:, None]).T @ ur
                rhs = h.item_l2 * n_users * prior[i] + (1 + h.alpha) * ur[pos_of[sl]].sum(axis=0)
                v_new[i] = np.linalg.solve(hess, rhs)
            self.set_global_weights(
                {
                    **self._serving,
                    "item_emb": (v_new - prior).astype(np.float32),
                    "feature_emb": f_new.astype(np.float32),
                }
            )

    def score(
        self, context: np.ndarray, item_features: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        del context  # this model ranks by taste; the logistic model covers context
        items = np.asarray(items, dtype=np.int64)
        x1 = self._with_intercept(item_features)
        v = x1 @ self._serving["feature_emb"].astype(np.float64)
        known = items >= 0
        v[known] += self._serving["item_emb"][items[known]]
        out: np.ndarray = (v @ np.append(self.user.astype(np.float64), 1.0)).astype(np.float32)
        return out


def split_labels(examples: Examples) -> tuple[np.ndarray, np.ndarray]:
    """Distinct positive items, and distinct negatives that were never also a positive."""
    items = np.asarray(examples.items, dtype=np.int64)
    labels = np.asarray(examples.labels)
    pos = np.unique(items[labels > 0.5])
    neg = np.setdiff1d(np.unique(items[labels <= 0.5]), pos)
    return pos, neg
