"""The unmasked sum is exactly the plain sum of the survivors' quantised inputs, whatever drops."""

from __future__ import annotations

import numpy as np
import pytest
from secagg_driver import STAGES, make_config, plain_sum, run_round

from lerna.core.secagg import RoundAborted, SecAggServer

N, D = 30, 500


def _dropped(n: int, rate: float, stage: str, seed: int) -> set[int]:
    rng = np.random.default_rng([seed, STAGES.index(stage)])
    return set(rng.choice(np.arange(1, n + 1), int(rate * n), replace=False).tolist())


# (cohort size, dropout rate): 30 devices at 30% need the complete graph; 100 at 10% get a
# sparse SecAgg+ graph (k = 34).
CASES = [(30, 0.3), (30, 0.1), (100, 0.1)]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize(("n", "rate"), CASES)
def test_sum_exact_with_dropouts_at_one_stage(n: int, rate: float, stage: str) -> None:
    config = make_config(n, D, threshold=n // 2 + 1, dropout_rate=rate)
    drop = {stage: _dropped(n, rate, stage, seed=1)}
    run = run_round(config, drop, seed=2, persist_each_message=n <= 30)
    assert run.request is not None and run.total is not None
    expected_survivors = [p for p in config.parties if stage == "unmasking" or p not in drop[stage]]
    assert run.request.survivors == expected_survivors
    np.testing.assert_array_equal(run.total, plain_sum(run, run.request.survivors))


def test_sparse_graph_with_dropouts_spread_over_stages() -> None:
    n = 150
    config = make_config(n, D, threshold=n // 2 + 1, dropout_rate=0.15)
    assert config.degree == 52
    ids = np.random.default_rng(8).permutation(np.arange(1, n + 1)).tolist()
    drop = {stage: set(ids[5 * i : 5 * i + 5]) for i, stage in enumerate(STAGES)}
    run = run_round(config, drop, seed=9, persist_each_message=False)
    assert run.request is not None and run.total is not None
    assert len(run.request.survivors) == n - 15 and len(run.request.dropped) == 5
    np.testing.assert_array_equal(run.total, plain_sum(run, run.request.survivors))


def test_sparse_graph_is_sparse() -> None:
    assert make_config(100, D, dropout_rate=0.1).degree == 34
    assert make_config(200, D, dropout_rate=0.2).degree < 100


def test_sum_exact_with_dropouts_at_every_stage() -> None:
    config = make_config(40, D, threshold=21, dropout_rate=0.3)
    drop = {"advertise_keys": {1, 2}, "share_keys": {3, 4, 5}, "masked_input": {6, 7, 8, 9}}
    drop["unmasking"] = {10, 11, 12, 13}
    run = run_round(config, drop, seed=3, persist_each_message=False)
    survivors = list(range(10, 41))
    assert run.request is not None and run.request.survivors == survivors
    assert run.request.dropped == [6, 7, 8, 9]
    assert run.total is not None
    np.testing.assert_array_equal(run.total, plain_sum(run, survivors))
    dropouts = run.server().dropouts()
    assert dropouts == {
        "advertise_keys": [1, 2],
        "share_keys": [3, 4, 5],
        "masked_input": [6, 7, 8, 9],
        "unmasking": [10, 11, 12, 13],
    }


def test_complete_graph_small_cohort() -> None:
    config = make_config(5, 64, threshold=3)
    assert config.degree == 4
    run = run_round(config, {"masked_input": {2}}, seed=4)
    assert run.total is not None
    np.testing.assert_array_equal(run.total, plain_sum(run, [1, 3, 4, 5]))


@pytest.mark.parametrize("stage", STAGES)
def test_below_threshold_aborts(stage: str) -> None:
    config = make_config(N, D, threshold=N // 2 + 1)
    drop = {stage: set(range(1, N // 2 + 1))}  # leaves N/2 = t - 1
    with pytest.raises(RoundAborted):
        run_round(config, drop, seed=5)


def test_abort_at_masked_input_reveals_nothing() -> None:
    config = make_config(N, D, threshold=N // 2 + 1)
    run = run_round(config, {"masked_input": set(range(1, 17))}, seed=6, until="masked_input")
    server = run.server()
    with pytest.raises(RoundAborted):
        server.close_masked_input()
    assert server.state.stage == "aborted"
    assert server.dropouts() == {
        "advertise_keys": [],
        "share_keys": [],
        "masked_input": list(range(1, 17)),
    }
    assert server.state.unmask_request is None and server.state.responses == {}
    assert server.state.inboxes == {} and server.state.masked_sum == b""
    with pytest.raises(RoundAborted):
        server.unmask_request()


def test_state_roundtrips_through_json() -> None:
    config = make_config(8, 16, threshold=5)
    run = run_round(config, {"masked_input": {8}}, seed=7)
    again = SecAggServer.from_json(run.server_json)
    assert again.to_json() == run.server_json
    assert again.state.stage == "done"
    np.testing.assert_array_equal(again.finalize(), plain_sum(run, list(range(1, 8))))
