"""Each round's running sum of masks: why the mask sum at close costs next to nothing.

A device that took its seed and then dropped out must not be in the set, so adding masks when
seeds are handed out would leave one mask to remove per dropout at close. Instead the service
adds a device's mask once the FL-API has accepted its upload: the FL-API answers the upload with
a receipt (signed with the ticket key), the device hands it to the gateway, and the service adds
the masks of receipted devices into the round's stored sum a batch of `fold_batch` at a time
(rewriting the stored vector once per batch). Each issue row says whether it was receipted and
whether its mask is in the sum, all changed in one transaction, so a restart loses nothing and
two service processes never double-count.

At close the service takes the stored sum, removes the pad and the masks of folded devices not
in the set (none, unless the FL-API receipted a device and then left it out), and adds the masks
of set devices not folded yet (under a batch, plus any device that never passed its receipt on):
a handful of PRG expansions, whatever the number of devices or dropouts. Where recomputing from
the set is cheaper, or where a round has no stored sum (its tickets carried no vector length, it
was opened before this table existed, or its vector is longer than the service keeps sums for),
the sum is computed from the set's seeds as before.

The stored sum starts from a per-round pad, so the database alone (without the master key) holds
a uniformly random vector, never a sum of masks that could unmask a lone device's upload.
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
    """The round's running sum, locked (PostgreSQL) until the transaction ends: seed issues,
    receipts and the answer of a round take turns on it."""
    return session.get(RunningMaskSum, round_id, with_for_update=True)


def record_issue(
    session: Session,
    master_key: bytes,
    running: RunningMaskSum | None,
    round_id: str,
    device_id: str,
    vector_length: int | None,
) -> None:
    """Record a new device's seed issue; the round's first issue starts its padded sum.

    The first issue of a round fixes its vector length (from the ticket); a later ticket that
    names another length is refused, so the stored sum can never mix lengths."""
    now = datetime.now(UTC)
    if running is None and vector_length is not None:
        if _first_issue(session, round_id):
            pad = two_server.mask_sum([two_server.pad_seed(master_key, round_id)], vector_length)
            session.add(
                RunningMaskSum(
                    round_id=round_id,
                    vector_length=vector_length,
                    device_count=0,
                    padded_sum=encode_vector(pad),
                    updated_at=now,
                )
            )
        else:
            # another process may have started the sum after our first look (PostgreSQL reads
            # committed rows per statement): its issue row implies its sum row, so look again
            running = locked(session, round_id)
    if running is not None and vector_length != running.vector_length:
        raise InvalidRequest(
            f"the ticket's vector_length ({vector_length}) differs from this round's"
            f" ({running.vector_length})"
        )
    session.add(SeedIssue(round_id=round_id, device_id=device_id, issued_at=now))


def record_receipt(
    session: Session,
    master_key: bytes,
    running: RunningMaskSum | None,
    issue: SeedIssue,
    batch: int,
) -> None:
    """Mark the device's upload accepted; once `batch` receipted masks are pending, add them."""
    if issue.receipted:
        return  # a receipt passed on twice counts once
    issue.receipted = True
    if running is None:
        return
    session.flush()
    pending = list(
        session.scalars(
            select(SeedIssue.device_id).where(
                SeedIssue.round_id == issue.round_id,
                SeedIssue.receipted.is_(True),
                SeedIssue.folded.is_(False),
            )
        )
    )
    if len(pending) >= batch:
        _fold(session, master_key, running, pending, datetime.now(UTC))


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
