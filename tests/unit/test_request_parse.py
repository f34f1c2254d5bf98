"""The request guard's parse: orjson where that is sure to give what the full
path gives, the full path (``json.loads`` and the storability walk) for the
rest, with the same value or the same typed error for every body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from store import api_guard
from store.api_guard import MAX_JSON_DEPTH, _parse, _parse_plain, _Refused, check_json
from store.errors import InvalidArgument

SCOPE: dict[str, Any] = {"headers": [(b"content-type", b"application/json")]}


def full_path(body: bytes) -> tuple[Any, ...]:
    """What the guard answered before it had a quick path."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return ("MALFORMED_REQUEST", f"request body is not valid JSON: {exc}")
    try:
        check_json(value)
    except RecursionError:
        return ("INVALID_ARGUMENT", "body: JSON nested too deeply")
    except InvalidArgument as exc:
        return ("INVALID_ARGUMENT", exc.message)
    return ("ok", repr(value))


def guarded(body: bytes) -> tuple[Any, ...]:
    try:
        value = _parse(body, SCOPE)
    except _Refused as refused:
        return (refused.error.code.value, refused.error.message)
    return ("ok", repr(value))


TYPICAL = [
    json.dumps(
        {
            "task_token": "d2Y6ZGVmYXVsdDp3OnJ1bjox",
            "identity": "worker-1@host",
            "commands": [
                {
                    "type": "schedule_activity_task",
                    "attributes": {
                        "activity_id": "1",
                        "input": [{"metadata": {"encoding": "anNvbg=="}, "data": "MQ=="}],
                        "start_to_close_timeout_s": 10.5,
                        "retry_policy": {"maximum_attempts": 0, "backoff": 2.0},
                    },
                }
            ],
            "sticky_attributes": {"queue": "sticky-1", "timeout_s": 10},
            "note": "caf\u00e9 \U0001f600",
            "none": None,
            "flags": [True, False],
            "big": 10**18 - 1,
            "negative": -(10**18 - 1),
        }
    ).encode(),
    b"{}",
    b"[]",
    b'{"a":1,"a":2}',
    b"-0.0",
    b"1e-400",
    b"5e-324",
    b"1.7976931348623157e308",
    b'"\\/\\"\\n\\u00e9\\ud83d\\ude00"',
    b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH,
]

EDGES = [
    str(2**63 - 1).encode(),
    str(2**63).encode(),
    str(2**64 - 1).encode(),
    str(2**64).encode(),
    str(-(2**63)).encode(),
    str(-(2**63) - 1).encode(),
    b"1" * 40,
    b'{"id": "1234567890123456789"}',  # 19 digits in a string: the full path, same value
    b"1.2345678901234567890123",
    b"1e400",
    b"-1e400",
    b"NaN",
    b"[Infinity]",
    b'{"a": "x\\u0000y"}',
    b'{"a\\u0000": 1}',
    b'{"a": "x\\\\u0000y"}',  # an escaped backslash, then text: no NUL
    b'{"a": "\\ud800"}',
    b'{"a": "\\udfff x"}',
    b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
    b'{"a": "' + b"[" * 200 + b'"}',
    b"[" * 5000 + b"]" * 5000,
    b'{"a": 1,}',
    b"{'a': 1}",
    b"\xef\xbb\xbf{}",
    '{"a": 1}'.encode("utf-16"),
    b'{"a": "\xff"}',
    b'"\x01"',
    b" ",
]


@pytest.mark.parametrize("body", TYPICAL + EDGES)
def test_every_body_gets_what_the_full_path_gives(body: bytes) -> None:
    assert guarded(body) == full_path(body)


@pytest.mark.parametrize("body", TYPICAL)
def test_a_plain_body_takes_the_quick_path(body: bytes) -> None:
    value = _parse_plain(body)
    assert value is not api_guard._NOT_PLAIN
    assert repr(value) == repr(json.loads(body))


@pytest.mark.parametrize(
    "body",
    [
        str(2**64).encode(),
        b'{"a": "x\\u0000y"}',
        b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
        b"1e400",
        b'{"a": "\\ud800"}',
    ],
)
def test_a_body_the_walk_must_see_takes_the_full_path(body: bytes) -> None:
    assert _parse_plain(body) is api_guard._NOT_PLAIN
