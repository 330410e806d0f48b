"""Each open round's running sum of masks, kept in memory: why the mask sum at close costs next to
nothing.

A device that took its seed and then dropped out must not be in the set, so adding masks when
seeds are handed out would leave one mask to remove per dropout at close. Instead the service
adds a device's mask once the FL-API has accepted its upload: the FL-API answers the upload with
a receipt (signed with the ticket key), the device hands it to the gateway, and the service adds
that device's mask (one PRG expansion, about 0.2 ms for 100,000 coordinates) into the round's
sum. At close only the difference between the receipted devices and the FL-API's set is left to
add or remove: none, unless a device's receipt never arrived or the FL-API left a receipted
device out.

The sum is a cache, not a record, which is why it lives in memory and not in the database:
- The answer is correct whatever the cache holds. It is computed from the set the FL-API names
  and the cached devices, and from the set's seeds when there is no usable sum (a restart, an
  evicted round, a round whose tickets named no length or a longer one than is kept, or a set
  that differs from the receipted devices in more places than it has devices).
- Nothing durable depends on it: the rules that protect devices (issued devices only, one set
  per round) are checked in the database in the answer's own transaction.
- A stored sum would cost a database write per receipt, and leave in the database a vector
  that, with the master key, says which devices were folded; the memory it takes is bounded
  (least recently used rounds are dropped first).
Several service processes each hold the sums of the receipts they took; the one that answers
adds the rest from seeds, so more processes only make the answer slower, never wrong.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from lerna.core.secagg import two_server


@dataclass
class _Round:
    length: int
    total: npt.NDArray[np.uint32] | None = None  # allocated at the first receipt
    devices: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False  # taken for the answer: later adds must not touch `total`


@dataclass(frozen=True)
class CachedSum:
    """sum of PRG(seed of d) for d in `devices`, modulo 2^32, for vectors of `length`."""

    length: int
    total: npt.NDArray[np.uint32]
    devices: frozenset[str]


class RunningSums:
    """Per-round sums of receipted masks, at most `max_bytes` of them (least recently used
    rounds dropped first), for vectors of at most `max_length` coordinates."""

    def __init__(self, max_length: int, max_bytes: int) -> None:
        self.max_length = min(max_length, max_bytes // 4)
        self.max_bytes = max_bytes
        self._rounds: OrderedDict[str, _Round] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, round_id: str, length: int | None) -> None:
        """A seed for `round_id` was handed out with a ticket that names the vector length: from
        now on receipts for the round are summed. A length the cache cannot keep, or a second
        length for one round, means the round is answered from seeds."""
        with self._lock:
            known = self._rounds.get(round_id)
            if known is not None and known.length != length:
                del self._rounds[round_id]  # two lengths in one round: not summable, drop it
            elif known is None and length is not None and 0 < length <= self.max_length:
                self._rounds[round_id] = _Round(length)

    def add(self, round_id: str, device_id: str, seed: bytes) -> bool:
        """Add the device's mask to the round's sum once; False if the round keeps no sum."""
        with self._lock:
            entry = self._rounds.get(round_id)
            if entry is None:
                return False
            self._rounds.move_to_end(round_id)
            if entry.total is None:
                entry.total = np.zeros(entry.length, dtype=np.uint32)
                self._evict(keep=round_id)
        with entry.lock:
            if entry.closed:
                return False
            if device_id not in entry.devices:
                two_server.add_masks(entry.total, [seed])
                entry.devices.add(device_id)
        return True

    def take(self, round_id: str) -> CachedSum | None:
        """The round's sum, removed from the cache and owned by the caller from now on (the round
        is answered: no more receipts)."""
        with self._lock:
            entry = self._rounds.pop(round_id, None)
        if entry is None or entry.total is None:
            return None
        with entry.lock:  # a receipt already past the round check may still be adding
            entry.closed = True
            return CachedSum(entry.length, entry.total, frozenset(entry.devices))

    def held_devices(self, round_id: str) -> frozenset[str]:
        """The devices whose masks the round's sum holds (for tests and operators)."""
        with self._lock:
            entry = self._rounds.get(round_id)
        if entry is None:
            return frozenset()
        with entry.lock:
            return frozenset(entry.devices)

    def _evict(self, keep: str) -> None:
        """Drop least recently used allocated sums until the allocated ones fit (lock held)."""
        used = sum(4 * e.length for e in self._rounds.values() if e.total is not None)
        for round_id in list(self._rounds):
            if used <= self.max_bytes:
                break
            entry = self._rounds[round_id]
            if round_id != keep and entry.total is not None:
                del self._rounds[round_id]
                used -= 4 * entry.length


def set_mask_sum(
    master_key: bytes,
    round_id: str,
    devices: Iterable[str],
    length: int,
    cached: CachedSum | None,
) -> tuple[npt.NDArray[np.uint32], int]:
    """sum of the masks of `devices` modulo 2^32, and how many masks had to be expanded for it:
    from the cached sum (reused in place) where that is cheaper than one expansion per device."""
    chosen = set(devices)
    if cached is not None and cached.length == length:
        remove = sorted(cached.devices - chosen)
        add = sorted(chosen - cached.devices)
        if len(remove) + len(add) < len(chosen):
            total = cached.total
            two_server.add_masks(
                total, (two_server.device_seed(master_key, round_id, d) for d in remove), True
            )
            two_server.add_masks(
                total, (two_server.device_seed(master_key, round_id, d) for d in add)
            )
            return total, len(remove) + len(add)
    seeds = (two_server.device_seed(master_key, round_id, d) for d in sorted(chosen))
    return two_server.mask_sum(seeds, length), len(chosen)
