"""Handler inputs checked against their annotations' JSON scalars."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from worker.converter import input_mismatch


@dataclass
class Line:
    sku: str
    qty: int


@pytest.mark.parametrize(
    ("value", "hint", "where"),
    [
        ("1", int, "argument 1 should be int"),
        ("1.5", float, "argument 1 should be float"),
        (1, str, "argument 1 should be str"),
        (1, bool, "argument 1 should be bool"),
        (Line("a", "2"), Line, "argument 1.qty should be int"),  # type: ignore[arg-type]
        ([1, "2"], list[int], r"argument 1\[1\] should be int"),
        ({"a": "x"}, dict[str, int], r"argument 1\['a'\] should be int"),
        ((1, 2), tuple[int, str], r"argument 1\[1\] should be str"),
        ("x", int | None, "argument 1 should be int"),
    ],
)
def test_a_scalar_of_the_wrong_kind_is_named(value: Any, hint: Any, where: str) -> None:
    problem = input_mismatch([value], [hint])
    assert problem is not None
    assert re.match(where, problem)


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        (1, int),
        (True, int),
        (1, float),
        (1.5, float),
        (None, int),
        ("x", None),
        ({"any": "thing"}, dict),
        (Line("a", 2), Line),
        ([1, 2], list[int]),
        ({"a": 1}, dict[str, int]),
        ("x", Any),
    ],
)
def test_values_of_their_kind_pass(value: Any, hint: Any) -> None:
    assert input_mismatch([value], [hint]) is None
