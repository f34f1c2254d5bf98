"""The JSON payload converter: what it rebuilds from annotations, what it refuses."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Optional

import pydantic
import pytest

from worker.converter import PayloadConverter, input_mismatch
from worker.errors import InvalidArgumentError


@dataclasses.dataclass
class Point:
    x: int
    y: float


@dataclasses.dataclass
class Route:
    stops: list[Point]
    via: Point | None = None
    departs: datetime.datetime | None = None


class Invoice(pydantic.BaseModel):
    number: str
    issued: datetime.datetime
    lines: list[Point] = []


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


WHEN = datetime.datetime(2026, 12, 3, 16, 30, 5, 123000, tzinfo=datetime.UTC)
ID = uuid.UUID("6f1c8c2e-9a51-4a8e-b0f3-2d7c1e4b5a60")


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        (Point(1, 2.5), Point | None),
        (Point(1, 2.5), Optional[Point]),  # noqa: UP045 (the spelling users write too)
        ((1, "a"), tuple[int, str]),
        ((Point(1, 1.0), Point(2, 2.0)), tuple[Point, ...]),
        ((1, 2), tuple),
        ([Point(1, 1.0), None], list[Point | None]),
        ({"a": (1, 2)}, dict[str, tuple[int, ...]]),
        (WHEN, datetime.datetime),
        (WHEN.date(), datetime.date),
        (datetime.time(7, 45), datetime.time),
        (ID, uuid.UUID),
        (Color.BLUE, Color),
        ([Color.RED, Color.BLUE], list[Color]),
        (Route([Point(0, 0.5)], via=Point(3, 4.0), departs=WHEN), Route),
        (Route([Point(0, 0.5)]), Route),
        (Invoice(number="i-1", issued=WHEN, lines=[Point(1, 2.0)]), Invoice),
        ([Invoice(number="i-2", issued=WHEN)], list[Invoice]),
        (Invoice(number="i-3", issued=WHEN), Invoice | None),
        ([Point(1, 1.0)], Sequence[Point]),
        ({"p": Point(1, 1.0)}, Mapping[str, Point]),
        ({3, 1, 2}, set[int]),
        (frozenset({Color.RED}), frozenset[Color]),
    ],
)
def test_annotations_rebuild_what_json_flattened(value: Any, hint: Any) -> None:
    conv = PayloadConverter()
    back = conv.from_payload(conv.to_payload(value), hint)
    assert back == value
    assert type(back) is type(value)


def test_values_without_a_hint_stay_as_json_decoded_them() -> None:
    conv = PayloadConverter()
    assert conv.from_payload(conv.to_payload((1, 2))) == [1, 2]
    assert conv.from_payload(conv.to_payload(WHEN)) == WHEN.isoformat()
    assert conv.from_payload(conv.to_payload(Point(1, 2.0))) == {"x": 1, "y": 2.0}
    assert conv.from_payload(conv.to_payload(None), Point | None) is None


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (float("nan"), "value"),
        (float("inf"), "value"),
        ({"ratio": float("-inf")}, "value['ratio']"),
        ([1.0, [2.0, float("nan")]], "value[1][1]"),
        (Point(1, float("nan")), "value['y']"),
        ((None, float("inf")), "value[1]"),
        (
            Invoice(number="n", issued=WHEN, lines=[Point(1, float("nan"))]),
            "value['lines'][0]['y']",
        ),
    ],
)
def test_nan_and_infinities_are_refused_not_sent_as_null(value: Any, where: str) -> None:
    with pytest.raises(InvalidArgumentError) as exc:
        PayloadConverter().to_payload(value)
    assert exc.value.code == "INVALID_ARGUMENT"
    assert f"{where} is a float JSON cannot carry" in str(exc.value)


def test_a_null_that_is_none_is_still_sent() -> None:
    conv = PayloadConverter()
    value = {"a": None, "b": [1.5, None], "c": 1e308}
    assert conv.from_payload(conv.to_payload(value)) == value


def test_a_set_is_sent_in_order_so_every_replay_sends_the_same_bytes() -> None:
    conv = PayloadConverter()
    assert conv.to_payload({"b", "c", "a"}) == conv.to_payload(["a", "b", "c"])


def test_a_value_json_cannot_hold_names_what_can_be_sent() -> None:
    with pytest.raises(InvalidArgumentError) as exc:
        PayloadConverter().to_payload(object())
    assert "dataclasses, pydantic models or bytes" in str(exc.value)


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (2**64, "value"),
        (-(2**63) - 1, "value"),
        ({"a": [1, 2**70]}, "value['a'][1]"),
        (Point(2**64, 1.0), "value['x']"),
    ],
)
def test_an_integer_past_64_bits_is_refused_naming_where_it_is(value: Any, where: str) -> None:
    with pytest.raises(InvalidArgumentError) as exc:
        PayloadConverter().to_payload(value)
    assert f"{where} is an integer past 64 bits" in str(exc.value), exc.value
    # the edges of what JSON payloads carry still go
    assert PayloadConverter().to_payload([2**64 - 1, -(2**63)]).data


class Leg(NamedTuple):
    start: datetime.date
    end: datetime.date
    color: Color


class Trip(NamedTuple):
    name: str
    legs: list[Leg]


def test_named_tuples_travel_as_lists_and_come_back_as_themselves() -> None:
    # A NamedTuple is a tuple: it was refused as "not JSON-serialisable"
    conv = PayloadConverter()
    leg = Leg(datetime.date(2024, 1, 1), datetime.date(2024, 1, 3), Color.RED)
    trip = Trip("alps", [leg, leg._replace(color=Color.BLUE)])
    payload = conv.to_payload(trip)
    assert json.loads(base64.b64decode(payload.data)) == [
        "alps",
        [["2024-01-01", "2024-01-03", "red"], ["2024-01-01", "2024-01-03", "blue"]],
    ]
    back = conv.from_payload(payload, Trip)
    assert back == trip and isinstance(back, Trip) and isinstance(back.legs[0], Leg)
    assert back.legs[1].color is Color.BLUE
    # an object of its fields (as a client in another language writes it) reads too
    as_object = conv.to_payload({"name": "x", "legs": []})
    assert conv.from_payload(as_object, Trip) == Trip("x", [])
    # a key that is no field (a newer sender's) is left out, as a dataclass's is
    newer = conv.to_payload({"name": "x", "legs": [], "budget": 3})
    assert conv.from_payload(newer, Trip) == Trip("x", [])
    # without a hint it arrives as JSON decoded it
    assert conv.from_payload(payload)[0] == "alps"
    assert input_mismatch([trip], [Trip]) is None
    wrong = Trip("x", [Leg(datetime.date(2024, 1, 1), datetime.date(2024, 1, 1), Color.RED)])
    assert input_mismatch([wrong._replace(name=3)], [Trip]) == (
        "argument 1.name should be str, got int 3"
    )
