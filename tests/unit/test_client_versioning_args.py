"""What ``handle.update_versioning`` refuses before any call: a version that
is not DEPLOYMENT:BUILD_ID is an ``InvalidArgumentError`` (not a bare
``ValueError``), and a version given with no override is refused, where it was
dropped and the run's override cleared."""

from __future__ import annotations

import time

import pytest

from worker import Client
from worker.errors import InvalidArgumentError


@pytest.mark.parametrize(
    ("override", "version", "says"),
    [
        ("pinned", "payments", "is not DEPLOYMENT:BUILD_ID"),
        ("one-time", "payments41", "is not DEPLOYMENT:BUILD_ID"),
        (None, "payments:41", "takes no version"),
    ],
)
async def test_a_version_the_override_cannot_take_is_refused_before_a_call(
    override: str | None, version: str, says: str
) -> None:
    # nothing listens there: a call that went out would retry, not fail at once
    async with await Client.connect("http://127.0.0.1:9", retry_for_s=5, lazy=True) as client:
        handle = client.get_workflow_handle("order-1")
        started = time.monotonic()
        with pytest.raises(InvalidArgumentError, match=says) as err:
            await handle.update_versioning(override, version=version)
        assert err.value.code == "INVALID_ARGUMENT"
        assert time.monotonic() - started < 1
