"""Search attribute values as workflow code gives them, in the form the server takes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def normalized_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """``attributes`` with each value as JSON carries it the same in every replay:
    a datetime as RFC 3339 UTC, a set sorted, a tuple as a list.

    Raises:
        ValueError: a name that is no string, a naive datetime, a set of
            non-strings or a non-finite float.
    """
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"search attribute name {name!r} is not a string")
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError(f"search attribute {name!r}: naive datetime")
            value = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        elif isinstance(value, set | frozenset):
            # a set iterates in an order of its process (string hashes are
            # salted): sorted, a replay in another worker reads the same list
            try:
                value = sorted(value)
            except TypeError:
                raise ValueError(
                    f"search attribute {name!r}: a KeywordList holds strings"
                ) from None
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, float) and not math.isfinite(value):
            # JSON would carry it as null, which removes the attribute
            raise ValueError(f"search attribute {name!r}: {value!r} is not a finite number")
        out[name] = value
    return out
