"""What the SDK refuses to send: a body JSON cannot carry as it is."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from worker import Client
from worker._http import encode_body
from worker.errors import InvalidArgumentError


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"memo": {"a": 2**64}}, "request['memo']['a'] is an integer past 64 bits"),
        ({"search_attributes": {"Amount": -(2**63) - 1}}, "['Amount'] is an integer past 64"),
        ({"memo": {"a": [1, math.nan]}}, "request['memo']['a'][1] is a float JSON cannot"),
        ({"search_attributes": {"X": math.inf}}, "request['search_attributes']['X']"),
        ({"x": None, "y": -math.inf}, "request['y']"),
    ],
)
def test_a_body_json_cannot_carry_is_an_invalid_argument(body: Any, where: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        encode_body(body)
    assert where in caught.value.message


def test_the_edges_of_what_json_carries_are_sent_as_they_are() -> None:
    body = {"big": 2**64 - 1, "small": -(2**63), "none": None, "f": 1.5, "ok": True}
    assert orjson.loads(encode_body(body)) == body


async def test_a_call_with_such_a_body_raises_before_sending() -> None:
    # nothing listens there: a request that went out would end in UNAVAILABLE
    client = await Client.connect(
        "http://127.0.0.1:9", namespace="default", retry_for_s=0, lazy=True
    )
    async with client:
        with pytest.raises(InvalidArgumentError):
            await client.create_namespace("n", description="x", retention_days=2**70)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
async def test_a_search_attribute_no_double_can_hold_is_refused_as_a_number_not_a_string(
    value: float,
) -> None:
    """The body's check would say "send it as a string", which a Double attribute refuses."""
    client = await Client.connect(
        "http://127.0.0.1:9", namespace="default", retry_for_s=0, lazy=True
    )
    async with client:
        with pytest.raises(InvalidArgumentError) as caught:
            await client.start_workflow(
                "T", id="w", task_queue="q", search_attributes={"Amount": value}
            )
    message = caught.value.message
    assert "'Amount'" in message and "finite number" in message, message
    assert "string" not in message, message
