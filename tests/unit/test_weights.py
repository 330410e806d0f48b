"""The weights archive format: round trips, and refusal of anything malformed."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from lerna.core.weights import (
    Manifest,
    WeightsFormatError,
    dump_archive,
    flatten,
    layout_of,
    load_archive,
    unflatten,
)


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "w": rng.normal(size=(4, 3)).astype(np.float32),
        "b": rng.normal(size=2).astype(np.float32),
    }


def test_round_trip_keeps_values_shapes_and_meta() -> None:
    arrays = _arrays()
    manifest = Manifest(
        kind="model", model="logistic", version=3, arrays=layout_of(arrays), meta={"note": "x"}
    )
    loaded_manifest, loaded = load_archive(dump_archive(manifest, arrays))
    assert loaded_manifest == manifest
    assert [s.name for s in loaded_manifest.arrays] == ["b", "w"]
    for name in arrays:
        np.testing.assert_array_equal(loaded[name], arrays[name])


def test_flatten_unflatten_are_inverse() -> None:
    arrays = _arrays()
    layout = layout_of(arrays)
    vec = flatten(arrays, layout)
    assert vec.shape == (14,)
    back = unflatten(vec, layout)
    for name in arrays:
        np.testing.assert_allclose(back[name], arrays[name], rtol=1e-7)
    with pytest.raises(WeightsFormatError):
        unflatten(vec[:-1], layout)


def test_tampered_archives_are_refused() -> None:
    arrays = _arrays()
    good = dump_archive(
        Manifest(kind="model", model="m", version=0, arrays=layout_of(arrays)), arrays
    )
    lying = Manifest(
        kind="model",
        model="m",
        version=0,
        arrays=layout_of({"w": np.zeros((2, 2), np.float32), "b": arrays["b"]}),
    )
    buf = io.BytesIO()
    np.savez(
        buf,
        w=arrays["w"],
        b=arrays["b"],
        __manifest__=np.frombuffer(lying.model_dump_json().encode(), np.uint8),
    )
    nan = dict(arrays, b=np.array([np.nan, 0], np.float32))
    cases = {
        "truncated": good[: len(good) // 2],
        "shape lie": buf.getvalue(),
        "no manifest": _npz(w=arrays["w"]),
        "nan": dump_archive(
            Manifest(kind="model", model="m", version=0, arrays=layout_of(nan)), nan
        ),
        "pickle": _npz(w=np.array([{"a": 1}], dtype=object)),
    }
    for name, data in cases.items():
        with pytest.raises(WeightsFormatError):
            load_archive(data)
        assert name
    with pytest.raises(WeightsFormatError):
        load_archive(good, max_bytes=10)


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, arr in arrays.items():
            inner = io.BytesIO()
            np.save(inner, arr, allow_pickle=True)
            zf.writestr(f"{name}.npy", inner.getvalue())
    return buf.getvalue()
