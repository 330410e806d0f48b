"""A driver that runs whole SecAgg+ rounds in-process, with chosen dropouts at each stage.

The server is serialised to JSON and rebuilt between every message, as the FL-API will do with
its database, so every protocol test also exercises state persistence.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from lerna.core.secagg import SecAggClient, SecAggServer, default_degree
from lerna.core.secagg.messages import RoundConfig, UnmaskRequest

STAGES = ("advertise_keys", "share_keys", "masked_input", "unmasking")


def make_config(
    n: int,
    d: int,
    threshold: int | None = None,
    round_id: str = "app-1:round-1",
    dropout_rate: float = 0.3,
) -> RoundConfig:
    k = default_degree(n, dropout_rate)
    return RoundConfig(
        round_id=round_id,
        parties=list(range(1, n + 1)),
        threshold=threshold if threshold is not None else n // 2 + 1,
        degree=k,
        share_threshold=k // 2 + 1,
        graph_seed=hashlib.sha256(round_id.encode()).digest(),
        vector_length=d,
    )


@dataclass
class RoundRun:
    config: RoundConfig
    clients: dict[int, SecAggClient]
    inputs: dict[int, npt.NDArray[np.uint32]]
    server_json: str = ""
    request: UnmaskRequest | None = None
    total: npt.NDArray[np.uint32] | None = None
    states_seen: list[str] = field(default_factory=list)

    def server(self) -> SecAggServer:
        return SecAggServer.from_json(self.server_json)

    def save(self, server: SecAggServer) -> None:
        self.server_json = server.to_json()
        self.states_seen.append(self.server_json)


def run_round(
    config: RoundConfig,
    drop: dict[str, set[int]],
    seed: int = 0,
    until: str = "done",
    persist_each_message: bool = True,
) -> RoundRun:
    """Run stages in order; a party in drop[stage] sends nothing from that stage on."""
    rng = np.random.default_rng(seed)
    d = config.vector_length
    run = RoundRun(
        config=config,
        clients={p: SecAggClient(p) for p in config.parties},
        inputs={p: rng.integers(0, 2**32, d, dtype=np.uint32) for p in config.parties},
    )
    run.save(SecAggServer.start(config))
    gone: set[int] = set()

    def alive(stage: str) -> list[int]:
        gone.update(drop.get(stage, set()))
        return [p for p in config.parties if p not in gone]

    srv = run.server()
    for p in alive("advertise_keys"):
        srv.receive_keys(run.clients[p].advertise_keys(config))
        if persist_each_message:
            run.save(srv)
            srv = run.server()
    srv.close_advertise_keys()
    run.save(srv)
    for p in alive("share_keys"):
        srv.receive_shares(run.clients[p].share_keys(srv.key_directory(p)))
        if persist_each_message:
            run.save(srv)
            srv = run.server()
    srv.close_share_keys()
    run.save(srv)
    for p in alive("masked_input"):
        srv.receive_masked_input(run.clients[p].masked_input(srv.shares_inbox(p), run.inputs[p]))
        if persist_each_message:
            run.save(srv)
            srv = run.server()
    if until == "masked_input":
        return run
    run.request = srv.close_masked_input()
    run.save(srv)
    for p in alive("unmasking"):
        srv.receive_unmask(run.clients[p].unmask(run.request))
        if persist_each_message:
            run.save(srv)
            srv = run.server()
    run.total = srv.finalize()
    run.save(srv)
    return run


def plain_sum(run: RoundRun, parties: list[int]) -> npt.NDArray[np.uint32]:
    total = np.zeros(run.config.vector_length, dtype=np.uint32)
    for p in parties:
        total += run.inputs[p]
    return total
