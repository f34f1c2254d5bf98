"""/metrics shows the series an operator alerts on before there is anything
to count: dead letters per source region at 0."""

from __future__ import annotations

import httpx

from tests.conftest import Region, RegionPair
from tests.helpers import eventually
from worker import Client


async def test_dead_letters_read_zero_per_source_region_when_there_are_none(
    regions: RegionPair,
) -> None:
    # The series was absent until the first dead letter and vanished after
    # the last was purged, so `absent()` and `== 0` could not tell a healthy
    # region from one whose metric was gone.
    async with httpx.AsyncClient() as http:
        for here, there in ((regions.a, regions.b), (regions.b, regions.a)):
            text = (await http.get(f"{here.url}/metrics")).text
            line = f'baton_replication_dead_letters{{region="{here.name}",source="{there.name}"}} 0'
            assert line in text.splitlines()
            own = f'baton_replication_dead_letters{{region="{here.name}",source="{here.name}"}}'
            assert own not in text


async def test_queued_tasks_and_conflicts_read_zero_per_namespace_and_kind(
    regions: RegionPair,
) -> None:
    # Both series were absent until the first task or conflict and vanished
    # once the queue drained, so `baton_tasks_queued == 0` never held.
    a, b = regions.a, regions.b
    client = await Client.connect([a.url, b.url], namespace="zeroes")
    try:
        await client.create_namespace("zeroes", regions=[a.name, b.name], active_region=a.name)

        async def scrape(region: Region) -> list[str]:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{region.url}/metrics")).text.splitlines()

        lines = await scrape(a)
        for kind in ("workflow", "activity"):
            assert (
                f'baton_tasks_queued{{region="{a.name}",namespace="zeroes",kind="{kind}"}} 0'
                in (lines)
            )
        for kind in ("local_tail", "rejected_batch"):
            labels = f'region="{a.name}",namespace="zeroes",kind="{kind}"'
            line = f"baton_replication_conflicts{{{labels}}} 0"
            assert line in lines

        # a task waiting with no worker counts, and the standby holds the
        # namespace's zeroes too once the namespace replicated there
        await client.start_workflow("Nobody", id="queued-1", task_queue="none-polls")
        lines = await scrape(a)
        queued = f'baton_tasks_queued{{region="{a.name}",namespace="zeroes",kind="workflow"}} 1'
        assert queued in lines

        async def standby_has_zeroes() -> bool:
            line = f'baton_tasks_queued{{region="{b.name}",namespace="zeroes",kind="activity"}} 0'
            return line in await scrape(b)

        await eventually(standby_has_zeroes, what="the standby's zeroes")
    finally:
        await client.close()
