"""Each round's running sum of masks: why the mask sum at close costs dropouts, not devices.

As devices take their seeds, the service adds their masks into the round's stored sum, a batch
of `fold_batch` issues at a time (rewriting the stored vector once per batch, not once per
device), in the transaction that records the batch's last issue; each issue row says whether its
mask is in the sum, so a restart loses nothing and two service processes never double-count.
When the FL-API asks for its set, the service removes the pad and the masks of folded devices not
in the set, and adds those of set devices not folded yet (fewer than a batch): about 1 + dropouts
PRG expansions instead of one per accepted device. Where recomputing from the set is cheaper
(most devices dropped), or where a round has no stored sum (its tickets carried no vector length,
it was opened before this table existed, or its vector is longer than the service keeps sums
for), the sum is computed from the set's seeds as before.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lerna.core.secagg import two_server
from lerna.core.secagg.messages import decode_vector, encode_vector
from lerna.mpc.db import RunningMaskSum, SeedIssue
from lerna.mpc.errors import InvalidRequest


def locked(session: Session, round_id: str) -> RunningMaskSum | None:
    """The round's running sum, locked (PostgreSQL) until the transaction ends: seed issues and
    the answer of a round take turns on it."""
    return session.get(RunningMaskSum, round_id, with_for_update=True)


def fold_in(
    session: Session,
    master_key: bytes,
    running: RunningMaskSum | None,
    round_id: str,
    device_id: str,
    vector_length: int | None,
    batch: int,
) -> RunningMaskSum | None:
    """Record a new device's seed issue; once `batch` issues of a round that keeps a sum are
    pending, add their masks into it.

    The first issue of a round fixes its vector length (from the ticket); a later ticket that
    names another length is refused, so the stored sum can never mix lengths."""
    now = datetime.now(UTC)
    if running is None and vector_length is not None:
        if _first_issue(session, round_id):
            pad = two_server.mask_sum([two_server.pad_seed(master_key, round_id)], vector_length)
            running = RunningMaskSum(
                round_id=round_id,
                vector_length=vector_length,
                device_count=0,
                padded_sum=encode_vector(pad),
                updated_at=now,
            )
            session.add(running)
        else:
            # another process may have started the sum after our first look (PostgreSQL reads
            # committed rows per statement): its issue row implies its sum row, so look again
            running = locked(session, round_id)
    if running is not None and vector_length != running.vector_length:
        raise InvalidRequest(
            f"the ticket's vector_length ({vector_length}) differs from this round's"
            f" ({running.vector_length})"
        )
    session.add(SeedIssue(round_id=round_id, device_id=device_id, issued_at=now, folded=False))
    if running is not None:
        pending = list(
            session.scalars(
                select(SeedIssue.device_id).where(
                    SeedIssue.round_id == round_id, SeedIssue.folded.is_(False)
                )
            )
        )
        if len(pending) >= batch:
            _fold(session, master_key, running, pending, now)
    return running


def _fold(
    session: Session,
    master_key: bytes,
    running: RunningMaskSum,
    devices: list[str],
    now: datetime,
) -> None:
    total = decode_vector(running.padded_sum, running.vector_length)
    seeds = [two_server.device_seed(master_key, running.round_id, d) for d in devices]
    running.padded_sum = encode_vector(two_server.add_masks(total, seeds))
    running.device_count += len(devices)
    running.updated_at = now
    session.execute(
        update(SeedIssue)
        .where(SeedIssue.round_id == running.round_id, SeedIssue.device_id.in_(devices))
        .values(folded=True)
    )


def _first_issue(session: Session, round_id: str) -> bool:
    """No device has a seed for the round yet (a round that began without a sum never gets one:
    its earlier masks are not in any sum)."""
    found = session.scalars(
        select(SeedIssue.device_id).where(SeedIssue.round_id == round_id).limit(1)
    ).first()
    return found is None


def set_mask_sum(
    master_key: bytes,
    round_id: str,
    devices: list[str],
    folded: set[str],
    running: RunningMaskSum | None,
    vector_length: int,
) -> npt.NDArray[np.uint32]:
    """sum of the masks of `devices` (all of them issued), the cheaper of two ways; `folded` are
    the round's issues whose masks are in the running sum."""
    chosen = set(devices)
    remove = sorted(folded - chosen)
    add = sorted(chosen - folded)
    usable = (
        running is not None
        and running.device_count == len(folded)
        and running.vector_length == vector_length
    )
    if running is None or not usable or 1 + len(remove) + len(add) >= len(devices):
        seeds = (two_server.device_seed(master_key, round_id, d) for d in devices)
        return two_server.mask_sum(seeds, vector_length)
    total = decode_vector(running.padded_sum, vector_length)
    removed = [two_server.pad_seed(master_key, round_id)]
    removed += [two_server.device_seed(master_key, round_id, d) for d in remove]
    two_server.add_masks(total, removed, subtract=True)
    return two_server.add_masks(
        total, (two_server.device_seed(master_key, round_id, d) for d in add)
    )
