"""The one weights format: used for model download, update upload, version history and export.

An archive is a NumPy ``.npz`` (zip) file. Every array is stored under its own name; the entry
``__manifest__`` holds UTF-8 JSON (as a uint8 array) describing the archive: format tag, kind
(``model`` or ``update``), model type, version, and each array's name, shape and dtype, plus
free-form ``meta``. Loading never unpickles (``allow_pickle=False``) and checks every array
against the manifest, so a truncated or tampered file is refused rather than half-used.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

FORMAT: Literal["lerna-weights/1"] = "lerna-weights/1"
MANIFEST_KEY = "__manifest__"
ALLOWED_DTYPES = ("float32", "float64", "uint32", "int64")


class WeightsFormatError(ValueError):
    """An archive that is not a valid Lerna weights file."""


class ArraySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.]+$")
    shape: tuple[int, ...]
    dtype: Literal["float32", "float64", "uint32", "int64"]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["lerna-weights/1"] = FORMAT
    kind: Literal["model", "update"]
    model: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=0)
    arrays: list[ArraySpec]
    meta: dict[str, Any] = Field(default_factory=dict)


def layout_of(arrays: Mapping[str, np.ndarray]) -> list[ArraySpec]:
    """Array specs in a canonical (sorted) order, so flattening is the same everywhere."""
    return [
        ArraySpec(
            name=name,
            shape=tuple(int(s) for s in arrays[name].shape),
            dtype=str(arrays[name].dtype),
        )
        for name in sorted(arrays)
    ]


def dump_archive(manifest: Manifest, arrays: Mapping[str, np.ndarray]) -> bytes:
    expected = {spec.name: spec for spec in manifest.arrays}
    if set(expected) != set(arrays):
        raise WeightsFormatError("manifest and arrays name different arrays")
    buf = io.BytesIO()
    payload = {name: np.ascontiguousarray(arr) for name, arr in arrays.items()}
    payload[MANIFEST_KEY] = np.frombuffer(manifest.model_dump_json().encode(), dtype=np.uint8)
    np.savez(buf, allow_pickle=False, **payload)
    return buf.getvalue()


def load_archive(
    data: bytes, *, max_bytes: int = 64 << 20
) -> tuple[Manifest, dict[str, np.ndarray]]:
    """Parse and verify an archive; raise WeightsFormatError with the reason on any mismatch."""
    if len(data) > max_bytes:
        raise WeightsFormatError(f"archive is {len(data)} bytes, over the {max_bytes}-byte limit")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if MANIFEST_KEY not in npz.files:
                raise WeightsFormatError("archive has no manifest")
            manifest = Manifest.model_validate_json(npz[MANIFEST_KEY].tobytes())
            names = set(npz.files) - {MANIFEST_KEY}
            if names != {spec.name for spec in manifest.arrays}:
                raise WeightsFormatError("archive arrays do not match its manifest")
            arrays = {spec.name: npz[spec.name] for spec in manifest.arrays}
    except WeightsFormatError:
        raise
    except ValidationError as exc:
        raise WeightsFormatError(f"invalid manifest: {exc.errors()[0]['msg']}") from None
    except (
        OSError,
        ValueError,
        zipfile.BadZipFile,
        json.JSONDecodeError,
        EOFError,
        KeyError,
    ) as exc:
        raise WeightsFormatError(f"not a weights archive: {exc}") from None
    for spec in manifest.arrays:
        arr = arrays[spec.name]
        if tuple(arr.shape) != spec.shape or str(arr.dtype) != spec.dtype:
            raise WeightsFormatError(
                f"array {spec.name!r} is {arr.dtype}{list(arr.shape)}, manifest says "
                f"{spec.dtype}{list(spec.shape)}"
            )
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise WeightsFormatError(f"array {spec.name!r} contains NaN or Inf")
    return manifest, arrays


def flatten(arrays: Mapping[str, np.ndarray], layout: list[ArraySpec]) -> np.ndarray:
    """Concatenate arrays in layout order into one float64 vector (for aggregation)."""
    parts = []
    for spec in layout:
        arr = arrays[spec.name]
        if tuple(arr.shape) != spec.shape:
            raise WeightsFormatError(
                f"array {spec.name!r} has shape {arr.shape}, expected {spec.shape}"
            )
        parts.append(np.asarray(arr, dtype=np.float64).ravel())
    return np.concatenate(parts) if parts else np.zeros(0)


def unflatten(vector: np.ndarray, layout: list[ArraySpec]) -> dict[str, np.ndarray]:
    total = sum(spec.size for spec in layout)
    if vector.shape != (total,):
        raise WeightsFormatError(f"vector has shape {vector.shape}, layout needs ({total},)")
    out: dict[str, np.ndarray] = {}
    pos = 0
    for spec in layout:
        out[spec.name] = vector[pos : pos + spec.size].reshape(spec.shape).astype(spec.dtype)
        pos += spec.size
    return out
