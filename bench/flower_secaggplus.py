"""Flower 1.42's own SecAgg+ (server workflow + client mod), driven in one process.

Run by `bench/secagg.py --flower` inside a separate virtual environment that holds flwr==1.42.0
(never in the project's environment). Prints one JSON object per scenario on stdout.

`SecAggPlusWorkflow` and `secaggplus_mod` run unmodified; only the transport is replaced by
`LocalGrid`, which delivers each message to the addressed client in-process after a protobuf
round trip (as the wire would), so client time is each client's mod call and server time is the
workflow's wall time minus the clients' time and the protobuf round trips. Dropped clients give
no reply from the masked-vector stage on, which is what a timeout looks like to the workflow.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Iterable

import numpy as np
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.client.mod.secure_aggregation.secaggplus_mod import secaggplus_mod
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.serde import message_from_proto, message_to_proto
from flwr.compat.common import recorddict_compat as compat
from flwr.server.client_manager import SimpleClientManager
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.strategy import FedAvg
from flwr.server.workflow.secure_aggregation.secaggplus_workflow import SecAggPlusWorkflow
from flwr.serverapp.grid import Grid
from flwr.supercore.task_identity import TaskIdentity

MASKED_VECTOR_STAGE = 3


def _wire(msg: Message) -> tuple[Message, int, float]:
    t0 = time.perf_counter()
    proto = message_to_proto(msg)
    size = proto.ByteSize()
    copy = message_from_proto(proto)
    return copy, size, time.perf_counter() - t0


class LocalGrid(Grid):
    def __init__(self, updates: dict[int, np.ndarray], dropped: set[int]) -> None:
        self.updates = updates
        self.dropped = dropped
        self.contexts = {
            nid: Context(run_id=1, node_id=nid, node_config={}, state=RecordDict(), run_config={})
            for nid in updates
        }
        self.stage = 0
        self.client_time = dict.fromkeys(updates, 0.0)
        self.up = dict.fromkeys(updates, 0)
        self.down = dict.fromkeys(updates, 0)
        self.wire_time = 0.0

    def set_run(self, run: object) -> None:  # pragma: no cover - unused
        pass

    @property
    def run(self) -> object:  # pragma: no cover - unused
        return None

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):  # type: ignore[no-untyped-def]
        return Message(content, dst_node_id, message_type, group_id=group_id, ttl=ttl)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.updates)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        raise NotImplementedError

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        raise NotImplementedError

    def _fit(self, msg: Message, ctxt: Context) -> Message:
        update = self.updates[msg.metadata.dst_node_id]
        res = FitRes(
            status=Status(Code.OK, ""),
            parameters=ndarrays_to_parameters([update]),
            num_examples=1,
            metrics={},
        )
        return Message(compat.fitres_to_recorddict(res, keep_input=True), reply_to=msg)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None):  # type: ignore[no-untyped-def]
        self.stage += 1
        replies = []
        for msg in messages:
            nid = msg.metadata.dst_node_id
            msg.metadata.__dict__["_message_id"] = uuid.uuid4().hex
            if self.stage >= MASKED_VECTOR_STAGE and nid in self.dropped:
                continue
            delivered, size, dt = _wire(msg)
            self.down[nid] += size
            self.wire_time += dt
            t0 = time.perf_counter()
            reply = secaggplus_mod(delivered, self.contexts[nid], self._fit)
            self.client_time[nid] += time.perf_counter() - t0
            reply.metadata.__dict__["_message_id"] = uuid.uuid4().hex
            received, size, dt = _wire(reply)
            self.up[nid] += size
            self.wire_time += dt
            replies.append(received)
        return replies


def run(n: int, d: int, dropout: float, degree: int, share_threshold: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    nids = list(range(1, n + 1))
    updates = {nid: rng.normal(0, 0.01, d).astype(np.float32) for nid in nids}
    dropped = set(rng.choice(nids, int(dropout * n), replace=False).tolist())
    grid = LocalGrid(updates, dropped)
    manager = SimpleClientManager()
    for nid in nids:
        manager.register(GridClientProxy(nid, grid, run_id=1))
    strategy = FedAvg(
        fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=n, min_available_clients=n
    )
    base = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={})
    context = LegacyContext(base, strategy=strategy, client_manager=manager)
    context.state.config_records["config"] = ConfigRecord({"current_round": 1})
    context.state.array_records["parameters"] = compat.parameters_to_arrayrecord(
        ndarrays_to_parameters([np.zeros(d, dtype=np.float32)]), True
    )
    workflow = SecAggPlusWorkflow(
        num_shares=min(degree + 1, n), reconstruction_threshold=share_threshold
    )
    t0 = time.perf_counter()
    workflow(grid, context)
    wall = time.perf_counter() - t0
    survivors = [nid for nid in nids if nid not in dropped]
    result = compat.arrayrecord_to_parameters(
        context.state.array_records["parameters"], keep_input=True
    )
    mean = parameters_to_ndarrays(result)[0]
    expected = np.mean([updates[s] for s in survivors], axis=0)
    error = float(np.max(np.abs(mean - expected)))
    client_times = [grid.client_time[nid] for nid in nids]
    return {
        "mode": "flower-secagg+",
        "n": n,
        "d": d,
        "dropout": dropout,
        "degree": min(degree, n - 1),
        "server_s": wall - sum(client_times) - grid.wire_time,
        "client_mean_s": float(np.mean(client_times)),
        "client_max_s": float(np.max(client_times)),
        "client_up_bytes": float(np.mean(list(grid.up.values()))),
        "client_down_bytes": float(np.mean(list(grid.down.values()))),
        "max_abs_error_vs_plain_mean": error,
    }


def main() -> None:
    logging.getLogger("flwr").setLevel(logging.WARNING)
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 0
    for spec in json.loads(sys.argv[1]):
        print(json.dumps(run(**spec)), flush=True)


if __name__ == "__main__":
    main()
