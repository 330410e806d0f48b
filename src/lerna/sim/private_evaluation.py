"""DP-FedAvg evaluation in-process: the quality a model keeps at a given (epsilon, delta).

The same arithmetic the servers apply in a private two-server round, minus HTTP, masking and
quantisation: each device's update (``new_global - downloaded``) enters the sum as
``lerna.core.secure_update.contribution`` packs it (clipped to the update part of S, weight 1
per device), the sum gets N(0, (z S)^2) per coordinate (what the MPC service adds) and the server
applies sum / (expected cohort), as ``lerna.server.services.aggregation.private_mean`` does.
Every device takes part in every round (sampling rate q = 1), and z is calibrated for the target
epsilon with the RDP accountant over the number of rounds. Used by ``lerna eval --epsilon`` and
``bench/privacy_quality.py``; docs/privacy.md compares it with the same settings over HTTP.

The noise here stays numpy's float Gaussian on purpose: nothing is quantised or released (the
figure measured is utility), and at the scales of real rounds (standard deviations of 1e5 and
more quantised units) the discrete Gaussian the servers use has the continuous one's variance
to 1e-30 and an effective multiplier within 0.1% of z (``lerna.core.dp.lattice``), so the
float noise measures the same quality without inventing a fixed point for an in-process sum.

``fcf`` runs in its DP-friendly form (``per_user``: each device proposes its own unnormalised
statistics with weight 1, so clipping bounds one user's share of every sum) at dim 16, with
S = 6 (below the median update norm of ~20: noise, not clipping, is what costs most).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lerna.core.dp import PrivacyAccountant, PrivacyConfig
from lerna.core.models import Model, create_model
from lerna.core.models.base import Arrays
from lerna.core.secure_update import contribution
from lerna.core.weights import flatten, layout_of, unflatten
from lerna.sim.evaluation import Prepared, metrics_of, score_all

DP_HYPER: dict[str, dict[str, Any]] = {"fcf": {"per_user": True, "dim": 16}, "logistic": {}}
DP_CLIP: dict[str, float] = {"fcf": 6.0, "logistic": 0.7}
DELTA = 1e-5


def calibrate(epsilon: float, rounds: int, q: float, delta: float = DELTA) -> float:
    """The least noise multiplier z (to 1%) whose RDP epsilon after `rounds` is <= epsilon."""
    lo, hi = 0.05, 200.0
    while hi / lo > 1.01:
        mid = (lo * hi) ** 0.5
        if PrivacyAccountant(mid, q, delta).epsilon(rounds) <= epsilon:
            hi = mid
        else:
            lo = mid
    return hi


def train_dp(
    prepared: Prepared,
    kind: str,
    rounds: int,
    hyper: Mapping[str, Any],
    clip: float,
    z: float,
    seed: int = 0,
) -> tuple[Model, dict[int, Arrays], list[float]]:
    """DP-FedAvg over every device each round (q = 1); returns the model, personal states and
    the round-1 update norms (for choosing S)."""
    server = create_model(kind, prepared.spec, hyper, seed)
    device = create_model(kind, prepared.spec, hyper, seed)
    features = prepared.catalog.features
    personal: dict[int, Arrays] = {}
    noise_rng = np.random.default_rng([seed, 99])
    privacy = (
        PrivacyConfig(mode="two-server", clip_norm=clip, noise_multiplier=max(z, 1e-9))
        if clip > 0
        else None
    )
    norms: list[float] = []
    n_dev = len(prepared.users)
    for round_no in range(rounds):
        base = server.global_weights()
        layout = layout_of(base)
        flat_base = flatten(base, layout)
        total = np.zeros_like(flat_base)
        for u in range(n_dev):
            device.set_global_weights(base)
            if u in personal:
                device.set_personal_state(personal[u])
            else:
                device.reset_personal_state()
            result = device.fit_local(
                prepared.examples[u], features, np.random.default_rng([seed, round_no, u])
            )
            if result.num_examples == 0:
                continue
            delta = flatten(device.global_weights(), layout) - flat_base
            if round_no == 0:
                norms.append(float(np.linalg.norm(delta)))
            clipped = (
                contribution(delta, result.num_examples, {}, privacy)[: delta.shape[0]]
                if privacy is not None
                else delta
            )
            total += clipped
            personal[u] = device.personal_state()
        if z > 0:
            total += noise_rng.normal(0.0, z * clip, size=total.shape)
        new = flat_base + total / n_dev  # fixed denominator: the expected cohort, never the count
        weights = unflatten(new, layout)
        server.set_global_weights({k: v.astype(base[k].dtype) for k, v in weights.items()})
    return server, personal, norms


def evaluate_private(
    prepared: Prepared,
    kind: str,
    rounds: int,
    epsilons: Sequence[float],
    clip: float | None = None,
    hyper: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Rows ``"federated (no DP)"`` and ``"DP epsilon=<e>"`` (with ``z`` and ``epsilon``)."""
    hyper = {**DP_HYPER.get(kind, {}), **(hyper or {})}
    clip = DP_CLIP.get(kind, 1.0) if clip is None else clip
    start = time.perf_counter()
    model, personal, _ = train_dp(prepared, kind, rounds, hyper, 0.0, 0.0, seed)
    rows = {
        "federated (no DP)": {
            **metrics_of(score_all(model, prepared, personal), prepared),
            "seconds": round(time.perf_counter() - start, 2),
        }
    }
    for eps in epsilons:
        start = time.perf_counter()
        z = calibrate(eps, rounds, 1.0)
        model, personal, _ = train_dp(prepared, kind, rounds, hyper, clip, z, seed)
        rows[f"DP epsilon={eps:g}"] = {
            **metrics_of(score_all(model, prepared, personal), prepared),
            "seconds": round(time.perf_counter() - start, 2),
            "z": round(z, 3),
            "epsilon": round(PrivacyAccountant(z, 1.0, DELTA).epsilon(rounds), 3),
            "clip_norm": clip,
        }
    return rows
