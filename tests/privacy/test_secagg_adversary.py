"""A curious or malicious server, and replayed or malformed messages, get nothing."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats
from secagg_driver import make_config, run_round

from lerna.core.secagg import ProtocolError, RoundAborted, SecAggClient, SecAggServer
from lerna.core.secagg.messages import (
    EncryptedShare,
    KeyAdvertisement,
    MaskedInput,
    RevealedShare,
    SharesInbox,
    UnmaskRequest,
    UnmaskResponse,
    as_uint32,
)
from lerna.core.secagg.shamir import PRIME

N, D = 12, 4096


def _uniformity_p(vector: np.ndarray) -> float:
    """Chi-square p-value of the top 6 bits against uniform: low means visibly non-uniform."""
    counts = np.bincount(vector >> np.uint32(26), minlength=64)
    return float(stats.chisquare(counts).pvalue)


def test_masked_input_looks_uniform_while_the_update_does_not() -> None:
    # a realistic quantised update: small signed integers, so top bits are all 0 or all 1
    update = np.random.default_rng(0).normal(0, 1e6, D).astype(np.int64).astype(np.uint32)
    assert _uniformity_p(update) < 1e-6
    client = SecAggClient(1)
    fresh = make_config(N, D, threshold=7, round_id="r2")
    server = SecAggServer.start(fresh)
    clients = {p: SecAggClient(p) for p in fresh.parties}
    clients[1] = client
    for c in clients.values():
        server.receive_keys(c.advertise_keys(fresh))
    server.close_advertise_keys()
    for p, c in clients.items():
        server.receive_shares(c.share_keys(server.key_directory(p)))
    server.close_share_keys()
    masked = client.masked_input(server.shares_inbox(1), update).as_array(D)
    assert _uniformity_p(masked) > 1e-3
    assert abs(float(masked.mean()) / 2**32 - 0.5) < 0.02


def test_server_state_never_holds_an_individual_update() -> None:
    config = make_config(N, D, threshold=7)
    run = run_round(config, {"masked_input": {3}}, seed=12)
    for x in run.inputs.values():
        # the sum is stored base64 from offset 0, so an aligned prefix would show up verbatim
        needle = base64.b64encode(x.astype("<u4").tobytes()[:48]).decode()
        for state in run.states_seen:
            assert needle not in state
    # the running sum after the first upload is that device's *masked* vector: uniform-looking
    first_masked = next(s for s in run.states_seen if '"masked_from":[1]' in s)
    held = SecAggServer.from_json(first_masked).state.masked_sum
    assert _uniformity_p(np.frombuffer(held, dtype="<u4")) > 1e-3


def _ready_for_unmask(seed: int) -> tuple[SecAggServer, dict[int, SecAggClient], UnmaskRequest]:
    config = make_config(N, 64, threshold=7)
    run = run_round(config, {"masked_input": {5}}, seed=seed, until="masked_input")
    server = run.server()
    return server, run.clients, server.close_masked_input()


def test_client_refuses_to_reveal_both_shares_of_one_device() -> None:
    _, clients, request = _ready_for_unmask(13)
    both = UnmaskRequest(
        round_id=request.round_id, survivors=request.survivors, dropped=[*request.dropped, 2]
    )
    with pytest.raises(ProtocolError, match="both a survivor and dropped"):
        clients[1].unmask(both)
    # asking once as survivor and again as dropped: the second answer is refused
    clients[1].unmask(request)
    claims_2_dropped = UnmaskRequest(
        round_id=request.round_id,
        survivors=[p for p in request.survivors if p != 2],
        dropped=[*request.dropped, 2],
    )
    with pytest.raises(ProtocolError, match="out of order"):
        clients[1].unmask(claims_2_dropped)


def test_client_reveals_nothing_below_threshold() -> None:
    _, clients, request = _ready_for_unmask(14)
    few = UnmaskRequest(round_id=request.round_id, survivors=[1, 2, 3], dropped=[4, 6, 7])
    with pytest.raises(RoundAborted):
        clients[1].unmask(few)


def test_server_refuses_a_response_revealing_the_wrong_share() -> None:
    server, clients, request = _ready_for_unmask(15)
    honest = clients[1].unmask(request)
    assert honest.mask_shares and not {s.owner for s in honest.key_shares} - {5}
    survivor_share = honest.mask_shares[0]
    forged = UnmaskResponse(
        round_id=request.round_id,
        sender=1,
        key_shares=[survivor_share],  # a survivor's key share would unmask its update
        mask_shares=[],
    )
    with pytest.raises(ProtocolError, match="did not drop"):
        server.receive_unmask(forged)
    with pytest.raises(ValidationError, match="never both"):
        UnmaskResponse(
            round_id=request.round_id,
            sender=1,
            key_shares=[survivor_share],
            mask_shares=[survivor_share],
        )
    server.receive_unmask(honest)
    with pytest.raises(ProtocolError, match="replayed"):
        server.receive_unmask(honest)


def test_replays_are_refused_at_every_stage() -> None:
    config = make_config(N, 64, threshold=7)
    server = SecAggServer.start(config)
    clients = {p: SecAggClient(p) for p in config.parties}
    adverts = {p: c.advertise_keys(config) for p, c in clients.items()}
    for a in adverts.values():
        server.receive_keys(a)
    with pytest.raises(ProtocolError, match="replayed"):
        server.receive_keys(adverts[1])
    stolen = KeyAdvertisement(
        round_id=config.round_id,
        sender=1,
        cipher_public_key=adverts[2].cipher_public_key,
        mask_public_key=adverts[2].mask_public_key,
    )
    with pytest.raises(ProtocolError):
        server.receive_keys(stolen)
    server.close_advertise_keys()
    with pytest.raises(ProtocolError, match="out of order"):
        server.receive_keys(adverts[1])
    uploads = {p: c.share_keys(server.key_directory(p)) for p, c in clients.items()}
    for u in uploads.values():
        server.receive_shares(u)
    with pytest.raises(ProtocolError, match="replayed"):
        server.receive_shares(uploads[1])
    server.close_share_keys()
    inbox = server.shares_inbox(1)
    masked = clients[1].masked_input(inbox, np.zeros(64, dtype=np.uint32))
    server.receive_masked_input(masked)
    with pytest.raises(ProtocolError, match="replayed"):
        server.receive_masked_input(masked)
    with pytest.raises(ProtocolError, match="out of order"):
        clients[1].masked_input(inbox, np.zeros(64, dtype=np.uint32))


def test_share_ciphertexts_are_bound_to_round_and_parties() -> None:
    config = make_config(N, 64, threshold=7)
    run = run_round(config, {}, seed=16, until="masked_input")
    old_share = next(  # a share party 2 sent in round 1
        s for shares in run.server().state.inboxes.values() for s in shares if s.sender == 2
    )
    fresh = make_config(N, 64, threshold=7, round_id="app-1:round-2")
    server = SecAggServer.start(fresh)
    clients = {p: SecAggClient(p) for p in fresh.parties}
    for c in clients.values():
        server.receive_keys(c.advertise_keys(fresh))
    server.close_advertise_keys()
    for p, c in clients.items():
        server.receive_shares(c.share_keys(server.key_directory(p)))
    server.close_share_keys()
    inbox = server.shares_inbox(old_share.recipient)
    replayed = [s if s.sender != 2 else old_share for s in inbox.shares]
    tampered_inbox = SharesInbox(
        round_id=fresh.round_id, recipient=inbox.recipient, shares=replayed
    )
    with pytest.raises(ProtocolError, match="authenticate"):
        clients[inbox.recipient].masked_input(tampered_inbox, np.zeros(64, dtype=np.uint32))
    flipped = bytearray(inbox.shares[0].ciphertext)
    flipped[20] ^= 1
    bad = EncryptedShare(
        sender=inbox.shares[0].sender, recipient=inbox.recipient, ciphertext=bytes(flipped)
    )
    tampered = SharesInbox(
        round_id=fresh.round_id, recipient=inbox.recipient, shares=[bad, *inbox.shares[1:]]
    )
    with pytest.raises(ProtocolError, match="authenticate"):
        clients[inbox.recipient].masked_input(tampered, np.zeros(64, dtype=np.uint32))


def test_wrong_lengths_and_out_of_range_values_are_rejected() -> None:
    config = make_config(N, 64, threshold=7)
    run = run_round(config, {"masked_input": {1}}, seed=17, until="masked_input")
    server = run.server()
    with pytest.raises(ProtocolError, match="64 uint32"):
        server.receive_masked_input(
            MaskedInput(round_id=config.round_id, sender=1, vector=bytes(4 * 63))
        )
    with pytest.raises(ProtocolError, match="another round"):
        server.receive_masked_input(MaskedInput(round_id="other", sender=1, vector=bytes(256)))
    with pytest.raises(ProtocolError, match=r"\[0, 2\^32\)"):
        as_uint32(np.array([-1] * 64), 64)
    with pytest.raises(ProtocolError, match="integers"):
        as_uint32(np.zeros(64), 64)
    with pytest.raises(ValidationError):
        KeyAdvertisement(
            round_id=config.round_id,
            sender=1,
            cipher_public_key=b"x" * 31,
            mask_public_key=b"y" * 32,
        )
    with pytest.raises(ValidationError):
        MaskedInput.model_validate_json('{"round_id":"r","sender":1,"vector":"not base64!"}')
    too_big = (PRIME + 1).to_bytes(66, "big")
    request = server.close_masked_input()
    honest = run.clients[2].unmask(request)
    owner = honest.mask_shares[0].owner
    response = honest.model_copy(
        update={"mask_shares": [RevealedShare(owner=owner, share=too_big)]}
    )
    with pytest.raises(ProtocolError, match="out of range"):
        server.receive_unmask(response)


def test_messages_roundtrip_as_json() -> None:
    config = make_config(N, 64, threshold=7)
    assert type(config).model_validate_json(config.model_dump_json()) == config
    advert = SecAggClient(3).advertise_keys(config)
    text = advert.model_dump_json()
    assert '"cipher_public_key":"' in text
    assert KeyAdvertisement.model_validate_json(text) == advert
