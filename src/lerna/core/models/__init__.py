"""Model registry: every model type the SDK can train and the server can aggregate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lerna.core.models.base import Examples, FitResult, Model, ModelSpec
from lerna.core.models.factorization import FactorizationModel
from lerna.core.models.logistic import LogisticModel

MODEL_TYPES: dict[str, type[Model]] = {
    LogisticModel.kind: LogisticModel,
    FactorizationModel.kind: FactorizationModel,
}


def create_model(
    kind: str, spec: ModelSpec, hyper: Mapping[str, Any] | None = None, seed: int = 0
) -> Model:
    try:
        cls = MODEL_TYPES[kind]
    except KeyError:
        raise ValueError(f"unknown model type {kind!r}; known: {sorted(MODEL_TYPES)}") from None
    return cls(spec, hyper, seed)


__all__ = ["MODEL_TYPES", "Examples", "FitResult", "Model", "ModelSpec", "create_model"]
