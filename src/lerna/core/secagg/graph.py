"""The SecAgg+ communication graph: a random k-regular graph derived from a public seed.

Bell et al. (2020) replace Bonawitz's complete graph with a random sparse one, so each device
agrees keys, shares secrets and expands masks only with k = O(log n) neighbours. We use their
construction: a seeded random permutation of the parties laid on a ring (a Harary graph), each
joined to the k/2 nearest on either side. Every party derives the graph from the round's
public seed, so neither side has to trust the other's list.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np


def default_degree(n: int) -> int:
    """An even k ~ 3 log2(n), capped at n - 1 (complete graph for small cohorts)."""
    if n <= 1:
        return 0
    k = 3 * math.ceil(math.log2(n))
    k += k % 2
    return min(k, n - 1)


def neighbours(parties: Sequence[int], degree: int, seed: bytes) -> dict[int, frozenset[int]]:
    """Neighbour sets of a random `degree`-regular graph on `parties` (degree even or n - 1)."""
    n = len(parties)
    if degree >= n - 1:
        return {p: frozenset(q for q in parties if q != p) for p in parties}
    if degree % 2:
        raise ValueError("degree must be even unless the graph is complete")
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(hashlib.sha256(seed).digest(), "big")))
    ring = [parties[i] for i in rng.permutation(n)]
    half = degree // 2
    out: dict[int, frozenset[int]] = {}
    for pos, p in enumerate(ring):
        out[p] = frozenset(ring[(pos + off) % n] for off in range(-half, half + 1) if off != 0)
    return out
