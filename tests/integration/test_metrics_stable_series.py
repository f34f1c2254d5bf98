"""/metrics shows the series an operator alerts on before there is anything
to count: dead letters per source region at 0."""

from __future__ import annotations

import httpx

from tests.conftest import RegionPair


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
