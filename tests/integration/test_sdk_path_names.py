"""Names the SDK puts into a request path: a name no job, schedule or
deployment can have is refused before sending; any other reaches its route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.apps.scheduled import WORKFLOWS
from worker import Client
from worker.errors import BatchNotFoundError, InvalidArgumentError, ScheduleNotFoundError

pytestmark = pytest.mark.integration


def calls(client: Client, name: str) -> dict[str, Callable[[], Awaitable[Any]]]:
    return {
        "describe_batch": lambda: client.describe_batch(name),
        "stop_batch": lambda: client.stop_batch(name),
        "schedule describe": lambda: client.get_schedule_handle(name).describe(),
        "schedule pause": lambda: client.get_schedule_handle(name).pause(),
        "describe_deployment": lambda: client.describe_deployment(name),
    }


@pytest.mark.parametrize("name", ["a/b", "/", "a/"])
async def test_a_name_with_a_slash_is_refused_before_sending(client: Client, name: str) -> None:
    for what, call in calls(client, name).items():
        with pytest.raises(InvalidArgumentError, match=r"is not valid|is not a batch job id"):
            await call()
            pytest.fail(f"{what} sent {name!r}")


@pytest.mark.parametrize("name", ["..", ".", "a?b"])
async def test_a_batch_id_no_job_can_have_is_invalid_not_a_missing_route(
    client: Client, name: str
) -> None:
    for call in (lambda: client.describe_batch(name), lambda: client.stop_batch(name)):
        with pytest.raises(InvalidArgumentError, match="is not a batch job id"):
            await call()


async def test_a_batch_id_a_job_can_have_reaches_its_route(client: Client) -> None:
    with pytest.raises(BatchNotFoundError):
        await client.describe_batch("a.b-c_1")


@pytest.mark.parametrize("name", ["..", ".", "a?b", "a#b", "a%2Fb", "%"])
async def test_a_schedule_id_outside_a_plain_segment_still_names_its_schedule(
    client: Client, name: str
) -> None:
    with pytest.raises(ScheduleNotFoundError):
        await client.get_schedule_handle(name).describe()
    schedule = await client.schedule_definition(
        workflow=WORKFLOWS[0], task_queue="q", cron="0 * * * *"
    )
    handle = await client.create_schedule(name, schedule, paused=True)
    assert (await handle.describe())["schedule_id"] == name
    await handle.unpause()
    await handle.delete()
