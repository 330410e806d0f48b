"""Logistic model over context, item metadata and their crosses, with a personal head.

This is the original product's model family: P(success | context, item). Global weights
cover the context x item-metadata crosses that all users share (evening favours short
videos); the personal head is a per-user weight on item metadata (this user likes
documentaries) that is trained on the device and never uploaded. L2 applies to weights, not
the bias; training is mini-batch SGD with a held-out slice for early stopping.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import Field

from lerna.core.models.base import Arrays, Examples, FitResult, Hyper, Model


class LogisticHyper(Hyper):
    learning_rate: float = Field(0.1, gt=0, le=10)
    l2: float = Field(1e-4, ge=0, le=10)
    personal_l2: float = Field(1e-3, ge=0, le=10)
    epochs: int = Field(5, ge=1, le=100)
    batch_size: int = Field(32, ge=1, le=4096)
    patience: int = Field(2, ge=1, le=20)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class LogisticModel(Model):
    kind = "logistic"
    Hyper = LogisticHyper
    hyper: LogisticHyper

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        s = self.spec
        self.n_features = s.n_context + s.n_item_features + s.n_context * s.n_item_features
        self.w = np.zeros(self.n_features, dtype=np.float32)
        self.b = np.zeros(1, dtype=np.float32)
        self.p = np.zeros(s.n_item_features, dtype=np.float32)

    def features(self, context: np.ndarray, item_features: np.ndarray) -> np.ndarray:
        """Rows of [context, item, context (x) item]; context may be one row or one per item."""
        ctx = np.broadcast_to(np.atleast_2d(context), (item_features.shape[0], self.spec.n_context))
        cross = (ctx[:, :, None] * item_features[:, None, :]).reshape(item_features.shape[0], -1)
        return np.hstack([ctx, item_features, cross]).astype(np.float32)

    def global_weights(self) -> Arrays:
        return {"w": self.w.copy(), "b": self.b.copy()}

    def set_global_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        checked = self._check_weights(weights, {"w": self.w, "b": self.b})
        self.w, self.b = checked["w"], checked["b"]

    def personal_state(self) -> Arrays:
        return {"p": self.p.copy()}

    def set_personal_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.p = self._check_weights(state, {"p": self.p})["p"]

    def reset_personal_state(self) -> None:
        self.p = np.zeros_like(self.p)

    def _logits(self, x: np.ndarray, item_x: np.ndarray) -> np.ndarray:
        out: np.ndarray = x @ self.w + self.b[0] + item_x @ self.p
        return out

    def loss(self, examples: Examples, item_features: np.ndarray) -> float:
        item_x = item_features[examples.items]
        x = self.features(examples.context, item_x)
        prob = np.clip(_sigmoid(self._logits(x, item_x)), 1e-7, 1 - 1e-7)
        y = examples.labels
        nll = -np.mean(y * np.log(prob) + (1 - y) * np.log(1 - prob))
        reg = 0.5 * self.hyper.l2 * float(self.w @ self.w) + 0.5 * self.hyper.personal_l2 * float(
            self.p @ self.p
        )
        return float(nll + reg)

    def gradients(self, examples: Examples, item_features: np.ndarray) -> Arrays:
        """Gradients of ``loss`` (exposed so tests can check them against finite differences)."""
        item_x = item_features[examples.items]
        x = self.features(examples.context, item_x)
        err = (_sigmoid(self._logits(x, item_x)) - examples.labels) / len(examples)
        return {
            "w": (x.T @ err + self.hyper.l2 * self.w).astype(np.float32),
            "b": np.array([err.sum()], dtype=np.float32),
            "p": (item_x.T @ err + self.hyper.personal_l2 * self.p).astype(np.float32),
        }

    def fit_local(
        self, examples: Examples, item_features: np.ndarray, rng: np.random.Generator
    ) -> FitResult:
        n = len(examples)
        if n == 0:
            return FitResult(0, 0.0, 0)
        order = rng.permutation(n)
        n_val = n // 5 if n >= 10 else 0
        val = _take(examples, order[:n_val])
        train = _take(examples, order[n_val:])
        best = (np.inf, self.global_weights(), self.personal_state())
        stale = 0
        epochs = 0
        h = self.hyper
        for epochs in range(1, h.epochs + 1):  # noqa: B007
            perm = rng.permutation(len(train))
            for start in range(0, len(train), h.batch_size):
                grads = self.gradients(
                    _take(train, perm[start : start + h.batch_size]), item_features
                )
                self.w -= h.learning_rate * grads["w"]
                self.b -= h.learning_rate * grads["b"]
                self.p -= h.learning_rate * grads["p"]
            score = self.loss(val, item_features) if n_val else self.loss(train, item_features)
            if score < best[0] - 1e-6:
                best, stale = (score, self.global_weights(), self.personal_state()), 0
            else:
                stale += 1
                if stale >= h.patience:
                    break
        self.set_global_weights(best[1])
        self.set_personal_state(best[2])
        return FitResult(num_examples=len(train), loss=float(best[0]), epochs=epochs)

    def score(
        self, context: np.ndarray, item_features: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        x = self.features(context, item_features)
        return self._logits(x, item_features)


def _take(ex: Examples, idx: np.ndarray) -> Examples:
    return Examples(ex.context[idx], ex.items[idx], ex.labels[idx])
