"""A versioning batch whose override is malformed is refused in one line that
names the field and the shape to send, as every other bad request is."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Region
from worker import Client
from worker.errors import InvalidArgumentError

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("pinned", "override"),
        ({"behavior": "pinned"}, "override.kind"),
        ({"kind": "bogus"}, "override.kind"),
    ],
)
async def test_a_malformed_override_is_refused_naming_its_field_and_the_shape(
    client: Client, region: Region, override: Any, field: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        await client.start_batch(
            "WorkflowType = 'Nothing'",
            "update-versioning",
            reason="r",
            params={"override": override},
        )
    message = info.value.message
    assert f"({field}: " in message, message
    assert '"kind": "pinned", "one-time" or "auto-upgrade"' in message, message
    # one line, not pydantic's report with its documentation link
    assert "\n" not in message and "pydantic" not in message, message
    assert await client.list_batches() == []
