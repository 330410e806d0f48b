"""The one interface every on-device model implements.

A model has two kinds of state. *Global* weights are shared by all devices of an app: the
server initialises them, devices train them locally and upload only their change, and the
server aggregates. *Personal* state belongs to one user and never leaves the device. Keeping
the split in the interface is what lets the SDK guarantee, by construction, that personal
state is never in an upload.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class ModelSpec:
    """Shapes a model needs; derived from the app's feature schema and item catalog."""

    n_context: int
    n_item_features: int
    n_items: int


@dataclass(frozen=True)
class Examples:
    """Labelled interactions of one user: what was shown, in what context, and the outcome."""

    context: np.ndarray  # (n, n_context) float32
    items: np.ndarray  # (n,) int64 catalog indices
    labels: np.ndarray  # (n,) float32 in {0, 1}

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class FitResult:
    num_examples: int
    loss: float
    epochs: int


class Hyper(BaseModel):
    """Base of each model's hyper-parameters; subclasses add fields with bounds."""

    model_config = ConfigDict(extra="forbid")


class Model(ABC):
    kind: ClassVar[str]
    Hyper: ClassVar[type[Hyper]]

    def __init__(self, spec: ModelSpec, hyper: Mapping[str, Any] | None = None, seed: int = 0):
        self.spec = spec
        self.hyper = self.Hyper.model_validate(dict(hyper or {}))
        self.seed = seed

    @abstractmethod
    def global_weights(self) -> Arrays:
        """A copy of the shared weights (what a device downloads and trains)."""

    @abstractmethod
    def set_global_weights(self, weights: Mapping[str, np.ndarray]) -> None: ...

    @abstractmethod
    def personal_state(self) -> Arrays:
        """A copy of the user's own state: stored on the device, never uploaded."""

    @abstractmethod
    def set_personal_state(self, state: Mapping[str, np.ndarray]) -> None: ...

    @abstractmethod
    def reset_personal_state(self) -> None:
        """Forget the user (consent withdrawn)."""

    @abstractmethod
    def fit_local(
        self, examples: Examples, item_features: np.ndarray, rng: np.random.Generator
    ) -> FitResult:
        """Train global and personal parts on one user's examples."""

    @abstractmethod
    def score(
        self, context: np.ndarray, item_features: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """Scores (higher is better) of the given catalog rows for one context vector.

        ``items`` holds catalog indices, or -1 for items the global model has no id for
        (new candidates), which are then scored from their metadata alone.
        """

    def personalize(self, examples: Examples, item_features: np.ndarray) -> None:
        """Fit only the personal state to the current global weights (no upload follows).

        Optional: called after a new version is downloaded, so that scoring pairs the new
        global weights with a personal state that was fitted against them. The default keeps
        the personal state as it is.
        """
        del examples, item_features

    def fit_central(
        self,
        examples_by_user: Sequence[Examples],
        item_features: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        """Train the global weights on everyone's data at once (the evaluation's upper bound).

        Never used in production, where no party holds everyone's data. The default pools all
        examples into one local fit; models with a better central solver override it.
        """
        pooled = Examples(
            np.concatenate([ex.context for ex in examples_by_user]),
            np.concatenate([ex.items for ex in examples_by_user]),
            np.concatenate([ex.labels for ex in examples_by_user]),
        )
        self.fit_local(pooled, item_features, rng)

    def _check_weights(
        self, weights: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]
    ) -> Arrays:
        if set(weights) != set(expected):
            raise ValueError(
                f"{self.kind} weights must be {sorted(expected)}, got {sorted(weights)}"
            )
        out: Arrays = {}
        for name, ref in expected.items():
            arr = np.asarray(weights[name])
            if arr.shape != ref.shape:
                raise ValueError(
                    f"{self.kind} weight {name!r} must have shape {ref.shape}, got {arr.shape}"
                )
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{self.kind} weight {name!r} contains NaN or Inf")
            out[name] = arr.astype(ref.dtype, copy=True)
        return out
