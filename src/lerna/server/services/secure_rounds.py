"""SecAgg+ rounds in the FL-API: the protocol of ``lerna.core.secagg`` over HTTP and the database.

The protocol state is rebuilt from the round's message log (``secagg_messages``): every
accepted message and every stage close is one row, appended in the transaction that accepted
it. A process keeps the rebuilt server object in memory and only replays rows it has not seen,
so a replica that joins late, or a server restarted after SIGKILL, continues the same round.
Masked inputs are not kept row by row: their running sum (mod 2^32) lives in the round's
aggregate row, which is all the protocol needs. Callers hold the task row lock
(``rounds.lock_task``), which serialises every change to a round.

What the database ever holds for a round: public keys, AES-GCM-encrypted shares (readable
only by the neighbour they are for), the masked sum, revealed shares, and the final noised
sum. Never one device's update in the clear.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError
from sqlalchemy import bindparam, delete, event, insert, select, update
from sqlalchemy.orm import Session

from lerna.core.dp import PrivacyConfig
from lerna.core.protocol import SecAggStatus
from lerna.core.secagg import ProtocolError, RoundAborted, SecAggServer, default_degree
from lerna.core.secagg.messages import (
    KeyAdvertisement,
    MaskedInput,
    RoundConfig,
    SharesUpload,
    UnmaskResponse,
)
from lerna.core.secure_update import quantizer, unpack, vector_length
from lerna.server.errors import Conflict, Forbidden, Unprocessable
from lerna.server.models import (
    Base,
    Device,
    MLTask,
    Round,
    RoundAggregate,
    RoundParticipant,
    SecAggMessage,
)
from lerna.server.services.participants import aware

STAGES = ("advertise_keys", "share_keys", "masked_input", "unmasking")
MESSAGE_TYPES: dict[str, type[BaseModel]] = {
    "keys": KeyAdvertisement,
    "shares": SharesUpload,
    "masked": MaskedInput,
    "unmask": UnmaskResponse,
}
STAGE_OF_KIND = {
    "keys": "advertise_keys",
    "shares": "share_keys",
    "masked": "masked_input",
    "unmask": "unmasking",
}

# Statements run on every protocol message, built once and run on the session's connection
# (Core: no ORM bookkeeping for rows this process never reads back as objects; the
# statements carry no ORM state, so skipping the session's autoflush changes nothing).
_MESSAGES = Base.metadata.tables[SecAggMessage.__tablename__]
_AGGREGATES = Base.metadata.tables[RoundAggregate.__tablename__]
_NEW_ROWS = (
    select(_MESSAGES.c.seq, _MESSAGES.c.kind, _MESSAGES.c.party, _MESSAGES.c.body)
    .where(_MESSAGES.c.round_id == bindparam("round_id"), _MESSAGES.c.seq > bindparam("after"))
    .order_by(_MESSAGES.c.seq)
)
_APPEND = insert(_MESSAGES)
_SET_SUM = (
    update(_AGGREGATES)
    .where(_AGGREGATES.c.round_id == bindparam("rid"))
    .values(weighted_sum=bindparam("total"))
)

# Keyed by round id *and* the round's random graph seed, so that two databases served by one
# process (tests, or a re-created database) can never share an entry.
_cache: dict[tuple[int, str], tuple[int, SecAggServer]] = {}
_cache_lock = threading.Lock()
_parties: dict[tuple[int, str], dict[int, int]] = {}  # same keys: device id -> party number


@event.listens_for(Session, "after_rollback")
def _forget_touched(session: Session) -> None:
    """A rolled-back request may have advanced a cached server past the database: drop it."""
    session.info.pop("secagg_caught_up", None)
    for key in session.info.pop("secagg_touched", set()):
        with _cache_lock:
            _cache.pop(key, None)


@event.listens_for(Session, "after_commit")
def _keep_touched(session: Session) -> None:
    session.info.pop("secagg_touched", None)
    session.info.pop("secagg_caught_up", None)


def privacy_of(rnd: Round) -> PrivacyConfig:
    return PrivacyConfig.model_validate(rnd.privacy)


def is_secure(rnd: Round) -> bool:
    return bool(rnd.privacy) and privacy_of(rnd).mode == "secagg+"


def start(session: Session, task: MLTask, rnd: Round, num_params: int, now: datetime) -> None:
    """Selection is over: number the selected devices and open the first protocol stage."""
    parts = list(
        session.scalars(
            select(RoundParticipant)
            .where(RoundParticipant.round_id == rnd.id)
            .order_by(RoundParticipant.id)
        )
    )
    for i, part in enumerate(parts, start=1):
        part.party = i
    privacy = privacy_of(rnd)
    n = len(parts)
    degree = default_degree(n, privacy.expected_dropout)
    config = RoundConfig(
        round_id=f"round-{rnd.id}",
        parties=list(range(1, n + 1)),
        threshold=privacy.threshold,
        degree=degree,
        share_threshold=degree // 2 + 1,
        graph_seed=os.urandom(32),
        vector_length=vector_length(num_params),
    )
    rnd.secagg_config = config.model_dump(mode="json")
    rnd.stage = "advertise_keys"
    rnd.stage_deadline = now + timedelta(seconds=task.stage_seconds)
    session.add(RoundAggregate(round_id=rnd.id, weighted_sum=bytes(4 * config.vector_length)))


def _key(rnd: Round) -> tuple[int, str]:
    return (rnd.id, str((rnd.secagg_config or {}).get("graph_seed", "")))


def _server(session: Session, rnd: Round) -> tuple[SecAggServer, int]:
    """The round's protocol server, caught up with every row in the log.

    Once caught up inside a transaction that holds the task lock, no other writer can add
    rows to this round's log until it ends, so later calls in it skip the query."""
    key = _key(rnd)
    with _cache_lock:
        cached = _cache.get(key)
    if cached and key in session.info.get("secagg_caught_up", set()):
        return cached[1], cached[0]
    seq, srv = (
        cached if cached else (0, SecAggServer.start(RoundConfig.model_validate(rnd.secagg_config)))
    )
    rows = session.connection().execute(_NEW_ROWS, {"round_id": rnd.id, "after": seq}).all()
    masked_seen = False
    for row_seq, kind, row_party, body in rows:
        if kind == "masked":
            srv.state.masked_from.append(int(row_party or 0))
            masked_seen = True
        elif kind == "close":
            _close(srv, body.decode())
        else:
            _receive(srv, kind, MESSAGE_TYPES[kind].model_validate_json(body))
        seq = row_seq
    if masked_seen:
        agg = session.get(RoundAggregate, rnd.id)
        assert agg is not None
        srv.state.masked_sum = agg.weighted_sum
    session.info.setdefault("secagg_touched", set()).add(key)
    session.info.setdefault("secagg_caught_up", set()).add(key)
    with _cache_lock:
        _cache[key] = (seq, srv)
    return srv, seq


def _receive(srv: SecAggServer, kind: str, msg: BaseModel) -> None:
    handlers: dict[str, Callable[[Any], None]] = {
        "keys": srv.receive_keys,
        "shares": srv.receive_shares,
        "masked": srv.receive_masked_input,
        "unmask": srv.receive_unmask,
    }
    handlers[kind](msg)


def _close(srv: SecAggServer, stage: str) -> None:
    if stage == "advertise_keys":
        srv.close_advertise_keys()
    elif stage == "share_keys":
        srv.close_share_keys()
    elif stage == "masked_input":
        srv.close_masked_input()


def _append(
    session: Session, rnd: Round, seq: int, kind: str, party: int | None, body: bytes
) -> int:
    session.connection().execute(
        _APPEND, {"round_id": rnd.id, "seq": seq + 1, "kind": kind, "party": party, "body": body}
    )
    key = _key(rnd)
    with _cache_lock:
        cached = _cache.get(key)
        if cached:
            _cache[key] = (seq + 1, cached[1])
    return seq + 1


def _party(session: Session, rnd: Round, device: Device) -> int:
    """The device's party number. Numbers are fixed once when the first stage opens, so each
    process reads a round's whole table once (one query instead of one per message)."""
    key = _key(rnd)
    with _cache_lock:
        parties = _parties.get(key)
    if parties is None:
        rows = session.execute(
            select(RoundParticipant.device_id, RoundParticipant.party).where(
                RoundParticipant.round_id == rnd.id, RoundParticipant.party.is_not(None)
            )
        ).all()
        parties = {int(device_id): int(party or 0) for device_id, party in rows}
        with _cache_lock:
            _parties[key] = parties
    party = parties.get(device.id)
    if party is None:
        raise Forbidden("this device is not a party of the round", "not_selected")
    return party


def status(session: Session, rnd: Round, device: Device) -> SecAggStatus:
    if rnd.state != "open" or rnd.stage == "selection":
        return _bare_status(rnd)
    party = _party(session, rnd, device)
    srv, _ = _server(session, rnd)
    return _status_from(srv, rnd, party)


def _bare_status(rnd: Round) -> SecAggStatus:
    return SecAggStatus(
        round_id=rnd.id,
        stage=rnd.stage if rnd.state == "open" else rnd.state,
        failure=rnd.failure,
    )


def read_status(session: Session, rnd: Round, device: Device, now: datetime) -> SecAggStatus | None:
    """The status from a read-only transaction, or None when only the locked path may answer.

    What a device downloads at a stage (its key directory, its inbox, the unmask request) was
    fixed when the previous stage closed; messages of the current stage never change it. So
    when this process's protocol object is at the stage the committed round row shows, its
    answer for the device is final and safe to read while a writer adds messages. Anything
    else (a deadline passed, selection, a process that has not caught up) goes the locked way.
    """
    if rnd.state != "open":
        return _bare_status(rnd)
    if rnd.stage not in STAGES or rnd.stage_deadline is None or now >= aware(rnd.stage_deadline):
        return None
    with _cache_lock:
        cached = _cache.get(_key(rnd))
    if cached is None or cached[1].state.stage != rnd.stage:
        return None
    srv = cached[1]
    try:
        out = _status_from(srv, rnd, _party(session, rnd, device), strict=True)
    except ProtocolError:
        return None
    # a writer may have finished the stage while this was read: then only the locked path knows
    return out if srv.state.stage == rnd.stage else None


def _status_from(
    srv: SecAggServer, rnd: Round, party: int, *, strict: bool = False
) -> SecAggStatus:
    out = SecAggStatus(
        round_id=rnd.id,
        stage=rnd.stage,
        failure=rnd.failure,
        party=party,
        config=srv.config,
        stage_deadline=aware(rnd.stage_deadline) if rnd.stage_deadline else None,
    )
    try:
        if rnd.stage == "share_keys" and party in srv.state.keys:
            out.directory = srv.key_directory(party)
        elif rnd.stage == "masked_input" and party in srv.state.shared:
            out.inbox = srv.shares_inbox(party)
        elif rnd.stage == "unmasking":
            out.unmask = srv.unmask_request()
    except ProtocolError:
        if strict:
            raise
        # the device dropped at an earlier stage: nothing for it now
    return out


def parse(kind: str, body: bytes, binary: tuple[str | None, str | None] | None) -> BaseModel:
    """The message in a request body: JSON, or for a masked input the raw vector with its
    (round id, sender) from the headers (``binary``); a readable 422 when it is not valid."""
    try:
        if binary is None:
            return MESSAGE_TYPES[kind].model_validate_json(body)
        if kind != "masked":
            raise Unprocessable(
                "only masked inputs may be sent as application/octet-stream", "bad_message"
            )
        return MaskedInput.model_validate(
            {"round_id": binary[0], "sender": binary[1], "vector": body}
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise Unprocessable(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}", "bad_message"
        ) from None


def receive(
    session: Session,
    task: MLTask,
    rnd: Round,
    device: Device,
    kind: str,
    body: bytes,
    binary: tuple[str | None, str | None] | None = None,
) -> None:
    """Accept one protocol message from a device, or refuse it with nothing written.

    ``binary``: the body is a masked input's raw vector, with this (round id, sender) from the
    request headers (see ``parse``). The caller then calls ``advance`` (through
    ``rounds.advance_secure``) to close the stage if this was the last message it waited for."""
    if rnd.state != "open":
        raise Conflict(f"round {rnd.id} is {rnd.state}", "round_closed")
    if rnd.stage != STAGE_OF_KIND[kind]:
        raise Conflict(
            f"round {rnd.id} is at stage {rnd.stage}, not {STAGE_OF_KIND[kind]}", "wrong_stage"
        )
    msg = parse(kind, body, binary)
    party = _party(session, rnd, device)
    if getattr(msg, "sender", None) != party:
        raise Forbidden("message sender is not this device's party", "wrong_sender")
    srv, seq = _server(session, rnd)
    try:
        _receive(srv, kind, msg)
    except ProtocolError as exc:
        code = "replay" if "replayed" in str(exc) else "protocol"
        raise Conflict(f"secure aggregation refused the message: {exc}", code) from None
    if kind == "masked":
        # the new running sum is already in memory: write it without reading the old one
        session.connection().execute(_SET_SUM, {"rid": rnd.id, "total": srv.state.masked_sum})
        rnd.uploads += 1
        body = b""
    _append(session, rnd, seq, kind, party, body)


def _expected(srv: SecAggServer, stage: str) -> tuple[set[int], set[int]]:
    s = srv.state
    if stage == "advertise_keys":
        return set(srv.config.parties), set(s.keys)
    if stage == "share_keys":
        return set(s.keys), set(s.shared)
    if stage == "masked_input":
        return set(s.shared), set(s.masked_from)
    survivors = set(s.unmask_request.survivors) if s.unmask_request else set()
    return survivors, set(s.responses)


def advance(
    session: Session,
    task: MLTask,
    rnd: Round,
    now: datetime,
    finish: Callable[[np.ndarray, int], None],
    *,
    deadline_passed: bool = False,
) -> None:
    """Close the current stage when everyone still in it has spoken, or when its deadline passed."""
    srv, seq = _server(session, rnd)
    force = deadline_passed
    while rnd.state == "open" and rnd.stage in STAGES:
        live, received = _expected(srv, rnd.stage)
        if not (force or live <= received):
            return
        force = False
        try:
            if rnd.stage == "unmasking":
                survivors = len(srv.unmask_request().survivors)
                total = srv.finalize()
                q = quantizer(privacy_of(rnd), len(srv.config.parties))
                finish(q.dequantize_sum(total, survivors), survivors)
                return
            _close(srv, rnd.stage)
        except RoundAborted as exc:
            fail(session, rnd, f"secure aggregation aborted: {exc}", now)
            return
        seq = _append(session, rnd, seq, "close", None, rnd.stage.encode())
        rnd.stage = STAGES[STAGES.index(rnd.stage) + 1]
        seconds = task.upload_seconds if rnd.stage == "masked_input" else task.stage_seconds
        rnd.stage_deadline = now + timedelta(seconds=seconds)


def fail(session: Session, rnd: Round, reason: str, now: datetime) -> None:
    rnd.state, rnd.failure, rnd.closed_at = "failed", reason[:255], now
    cleanup(session, rnd)


def cleanup(session: Session, rnd: Round) -> None:
    """A finished round keeps its outcome, not its protocol traffic."""
    session.execute(delete(SecAggMessage).where(SecAggMessage.round_id == rnd.id))
    agg = session.get(RoundAggregate, rnd.id)
    if agg is not None:
        session.delete(agg)
    with _cache_lock:
        _cache.pop(_key(rnd), None)
        _parties.pop(_key(rnd), None)


def unpack_sum(total: np.ndarray, num_params: int) -> Any:
    return unpack(total, num_params)
