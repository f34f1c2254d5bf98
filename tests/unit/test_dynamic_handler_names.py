"""Sending to a dynamic handler method is refused with a message that reads right."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from worker import InvalidArgumentError, RawValue, workflow
from worker._definition import handler_name


@workflow.defn
class Dyn:
    @workflow.run
    async def run(self) -> None:
        return None

    @workflow.signal(dynamic=True)
    def any_signal(self, name: str, args: Sequence[RawValue]) -> None:
        return None

    @workflow.query(dynamic=True)
    def any_query(self, name: str, args: Sequence[RawValue]) -> str:
        return name

    @workflow.update(dynamic=True)
    def any_update(self, name: str, args: Sequence[RawValue]) -> str:
        return name


@pytest.mark.parametrize(
    ("method", "kind", "plural"),
    [
        (Dyn.any_signal, "signal", "signals"),
        (Dyn.any_query, "query", "queries"),
        (Dyn.any_update, "update", "updates"),
    ],
)
def test_dynamic_handler_is_not_a_name_to_send(method: object, kind: str, plural: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        handler_name(method, kind)  # type: ignore[arg-type]
    message = str(info.value)
    assert f"is a dynamic {kind} handler, which takes {plural} of other names" in message
    assert f"name the {kind} to send by its name" in message
