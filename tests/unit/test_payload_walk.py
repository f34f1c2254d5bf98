"""Applying a payload codec to every payload inside wire JSON (worker/_payloads.py)."""

from __future__ import annotations

import base64
import copy
from collections.abc import Sequence
from typing import Any

from worker._payloads import transform
from worker.converter import PayloadCodec
from worker.wire import Payload

TAG = "test-codec"


class ReversingCodec(PayloadCodec):
    """Reverses the data bytes and tags the metadata; records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Payload]]] = []

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.calls.append(("encode", list(payloads)))
        return [
            Payload(metadata={**p.metadata, TAG: "reversed"}, data=_reverse(p.data))
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.calls.append(("decode", list(payloads)))
        out = []
        for p in payloads:
            if p.metadata.get(TAG) != "reversed":
                out.append(p)
                continue
            meta = {k: v for k, v in p.metadata.items() if k != TAG}
            out.append(Payload(metadata=meta, data=_reverse(p.data)))
        return out


def _reverse(data: str) -> str:
    return base64.b64encode(base64.b64decode(data)[::-1]).decode()


def payload(text: str, encoding: str = "json/plain") -> dict[str, Any]:
    return {"metadata": {"encoding": encoding}, "data": base64.b64encode(text.encode()).decode()}


def encoded(text: str, encoding: str = "json/plain") -> dict[str, Any]:
    return {
        "metadata": {"encoding": encoding, TAG: "reversed"},
        "data": base64.b64encode(text.encode()[::-1]).decode(),
    }


def history() -> list[dict[str, Any]]:
    """Events and commands with payloads at several depths, and look-alikes that are not."""
    return [
        {
            "event_id": 1,
            "event_type": "WorkflowExecutionStarted",
            "attributes": {
                "workflow_type": "Order",
                "input": [payload('"order-1"'), payload("42")],
                "memo": {"owner": payload('"ana"')},
                "first_run_id": "r1",
            },
        },
        {
            "event_id": 5,
            "event_type": "ActivityTaskFailed",
            "attributes": {
                "failure": {
                    "message": "boom",
                    "type": "Error",
                    "stack_trace": "",
                    "non_retryable": False,
                    "details": [payload('"detail"')],
                    "cause": {
                        "message": "root",
                        "type": "IOError",
                        "stack_trace": "",
                        "non_retryable": True,
                        "details": [payload('"deep detail"')],
                        "cause": None,
                    },
                },
            },
        },
        {
            "commands": [
                {
                    "command_type": "ScheduleActivityTask",
                    "attributes": {"input": [[payload('"nested-list"')]]},
                },
                {
                    "command_type": "CompleteWorkflowExecution",
                    "attributes": {"result": payload('"done"')},
                },
            ]
        },
    ]


NOT_PAYLOADS: list[Any] = [
    {"metadata": {"encoding": "json/plain"}, "data": "AAAA", "extra": 1},  # a third key
    {"metadata": {"encoding": "json/plain"}},  # no data
    {"data": "AAAA"},  # no metadata
    {"metadata": "not-a-dict", "data": "AAAA"},
    {"metadata": {}, "data": 123},  # data not a string
    {"retry_policy": {"initial_interval_s": 1.0, "maximum_attempts": 0}},
    {"meta": {"data": "x"}},
]


async def test_codec_none_is_a_no_op() -> None:
    obj = history()
    before = copy.deepcopy(obj)
    assert await transform(obj, None, encode=True) is obj
    assert await transform(obj, None, encode=False) is obj
    assert obj == before


async def test_encode_finds_payloads_at_every_depth() -> None:
    codec = ReversingCodec()
    obj = history()
    out = await transform(obj, codec, encode=True)
    assert out is obj  # in place
    started, failed, task = obj
    assert started["attributes"]["input"] == [encoded('"order-1"'), encoded("42")]
    assert started["attributes"]["memo"]["owner"] == encoded('"ana"')
    failure = failed["attributes"]["failure"]
    assert failure["details"] == [encoded('"detail"')]
    assert failure["cause"]["details"] == [encoded('"deep detail"')]
    assert failure["cause"]["cause"] is None
    assert failure["message"] == "boom"
    assert task["commands"][0]["attributes"]["input"] == [[encoded('"nested-list"')]]
    assert task["commands"][1]["attributes"]["result"] == encoded('"done"')
    # Everything that is not a payload is untouched.
    assert started["event_id"] == 1
    assert started["attributes"]["workflow_type"] == "Order"
    assert started["attributes"]["first_run_id"] == "r1"
    assert task["commands"][0]["command_type"] == "ScheduleActivityTask"


async def test_codec_runs_once_per_call_with_every_payload() -> None:
    codec = ReversingCodec()
    await transform(history(), codec, encode=True)
    assert len(codec.calls) == 1
    direction, batch = codec.calls[0]
    assert direction == "encode"
    texts = sorted(base64.b64decode(p.data).decode() for p in batch)
    assert texts == sorted(
        ['"order-1"', "42", '"ana"', '"detail"', '"deep detail"', '"nested-list"', '"done"']
    )


async def test_decode_uses_the_decode_side_once() -> None:
    codec = ReversingCodec()
    obj = history()
    await transform(obj, codec, encode=True)
    await transform(obj, codec, encode=False)
    assert [direction for direction, _ in codec.calls] == ["encode", "decode"]
    assert len(codec.calls[1][1]) == 7


async def test_round_trip_restores_the_original() -> None:
    codec = ReversingCodec()
    obj = history()
    original = copy.deepcopy(obj)
    await transform(obj, codec, encode=True)
    assert obj != original
    await transform(obj, codec, encode=False)
    assert obj == original


async def test_non_payload_dicts_are_left_alone() -> None:
    codec = ReversingCodec()
    obj = {"things": copy.deepcopy(NOT_PAYLOADS), "inner": {"x": copy.deepcopy(NOT_PAYLOADS[0])}}
    before = copy.deepcopy(obj)
    assert await transform(obj, codec, encode=True) is obj
    assert obj == before
    assert codec.calls == []  # nothing found, codec never called


async def test_look_alikes_beside_real_payloads_are_left_alone() -> None:
    codec = ReversingCodec()
    obj = {"real": payload('"x"'), "fakes": copy.deepcopy(NOT_PAYLOADS)}
    await transform(obj, codec, encode=True)
    assert obj["real"] == encoded('"x"')
    assert obj["fakes"] == NOT_PAYLOADS
    assert len(codec.calls[0][1]) == 1


async def test_empty_metadata_payload_is_found() -> None:
    codec = ReversingCodec()
    obj = [{"metadata": {}, "data": ""}]
    await transform(obj, codec, encode=True)
    assert obj == [{"metadata": {TAG: "reversed"}, "data": ""}]


async def test_decode_passes_through_payloads_it_did_not_encode() -> None:
    codec = ReversingCodec()
    obj = {"old": payload('"plain"'), "new": encoded('"secret"')}
    await transform(obj, codec, encode=False)
    assert obj == {"old": payload('"plain"'), "new": payload('"secret"')}


async def test_scalars_and_empty_containers() -> None:
    codec = ReversingCodec()
    values: list[Any] = [None, 3, "text", [], {}, [[]], {"a": {}}]
    for value in values:
        assert await transform(value, codec, encode=True) == value
    assert codec.calls == []
