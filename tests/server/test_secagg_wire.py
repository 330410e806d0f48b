"""The two wire forms of a masked input: raw bytes with headers (what the SDK sends) and the
JSON message (what older clients send). Both count once per device; a binary body is held to
the same checks as the JSON one (sender, round, replay, size)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel

from lerna.core.protocol import SecAggStatus
from lerna.core.secagg.messages import ROUND_HEADER, SENDER_HEADER, MaskedInput
from lerna.core.weights import flatten, layout_of
from lerna.sdk.api import DeviceAPI
from lerna.sdk.secure import SecureRound
from tests.helpers import ApiClient
from tests.server.test_secure_rounds import _devices, _drive, _rounds_for


class JsonOnlyAPI(DeviceAPI):
    """A client from before the binary form: every message, masked inputs too, as JSON."""

    def secagg_send(self, round_id: int, kind: str, message: BaseModel) -> SecAggStatus:
        return self._json(
            SecAggStatus,
            "POST",
            f"/v1/device/rounds/{round_id}/secagg/{kind}",
            content=message.model_dump_json(),
            headers={"Content-Type": "application/json"},
        )


def _legacy(r: SecureRound) -> None:
    old = JsonOnlyAPI(r.api.http)
    old.credential = r.api.credential
    r.api = old


def test_json_and_binary_masked_inputs_sum_to_the_same_mean(api: ApiClient) -> None:
    _, _, task, devices = _devices(api, 4)
    _, base = api.model(devices[0], task["id"])
    layout = layout_of(base)
    rng = np.random.default_rng(11)
    deltas = [rng.normal(scale=0.5, size=sum(s.size for s in layout)) for _ in devices]
    rounds = _rounds_for(api, devices, task, deltas, [100] * 4)
    _legacy(rounds[0])
    _legacy(rounds[1])
    _drive(rounds)
    assert [r.progress for r in rounds] == ["completed"] * 4
    _, new = api.model(devices[0], task["id"])
    expected = flatten(base, layout) + np.mean(deltas, axis=0)
    np.testing.assert_allclose(flatten(new, layout), expected, atol=1e-3)


def _at_masked_input(api: ApiClient) -> tuple[list[dict[str, str]], list[SecureRound], Any]:
    _, _, task, devices = _devices(api, 3)
    _, base = api.model(devices[0], task["id"])
    size = sum(s.size for s in layout_of(base))
    rounds = _rounds_for(api, devices, task, [np.ones(size)] * 3, [10] * 3)
    for r in rounds:
        r._vector = None  # stop before the masked input: the test sends it by hand
    _drive(rounds, max_passes=5)
    status = api.http.get(f"/v1/device/rounds/{rounds[0].round_id}/secagg", headers=devices[0])
    assert status.json()["stage"] == "masked_input"
    return devices, rounds, status.json()


def test_binary_masked_input_is_held_to_the_json_checks(api: ApiClient) -> None:
    devices, rounds, status = _at_masked_input(api)
    rid, config = rounds[0].round_id, status["config"]
    vector = bytes(4 * config["vector_length"])
    url = f"/v1/device/rounds/{rid}/secagg/masked"

    def post(device: dict[str, str], body: bytes, **headers: str) -> Any:
        sent = {**device, "Content-Type": "application/octet-stream", **headers}
        return api.http.post(url, content=body, headers=sent)

    mine = {ROUND_HEADER: config["round_id"], SENDER_HEADER: "1"}
    r = post(devices[0], vector, **{ROUND_HEADER: config["round_id"]})  # no sender
    assert r.status_code == 422 and r.json()["code"] == "bad_message"
    assert "sender" in r.json()["message"]
    r = post(devices[0], vector, **{**mine, SENDER_HEADER: "one"})
    assert r.status_code == 422 and r.json()["code"] == "bad_message"
    r = post(devices[0], vector, **{**mine, SENDER_HEADER: "2"})
    assert r.status_code == 403 and r.json()["code"] == "wrong_sender"
    r = post(devices[0], vector, **{**mine, ROUND_HEADER: "round-999999"})
    assert r.status_code == 409 and r.json()["code"] == "protocol"
    r = post(devices[0], vector[:-4], **mine)
    assert r.status_code == 409 and r.json()["code"] == "protocol"
    keys = f"/v1/device/rounds/{rid}/secagg/keys"
    r = api.http.post(
        keys, content=vector, headers={**devices[0], "Content-Type": "application/octet-stream"}
    )
    assert r.status_code in (409, 422)  # wrong stage first; never accepted as binary
    assert post(devices[0], vector, **mine).status_code == 200
    r = post(devices[0], vector, **mine)
    assert r.status_code == 409 and r.json()["code"] == "replay"
    legacy = MaskedInput(round_id=config["round_id"], sender=1, vector=vector)
    r = api.http.post(
        url,
        content=legacy.model_dump_json(),
        headers={**devices[0], "Content-Type": "application/json"},
    )
    assert r.status_code == 409 and r.json()["code"] == "replay"  # one input per device


def test_binary_form_only_for_masked_inputs(api: ApiClient) -> None:
    _, _, task, devices = _devices(api, 3)
    rid = api.checkin(devices[0], task["id"])["round_id"]
    for d in devices[1:]:
        api.checkin(d, task["id"])
    r = api.http.post(
        f"/v1/device/rounds/{rid}/secagg/keys",
        content=b"\x00" * 64,
        headers={**devices[0], "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 422 and r.json()["code"] == "bad_message"
    assert "octet-stream" in r.json()["message"]
