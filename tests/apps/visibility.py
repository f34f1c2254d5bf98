"""Workflows the visibility, reset and batch tests drive."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from worker import activity, workflow


@activity.defn
async def record(step: str) -> str:
    return f"done {step}"


@workflow.defn
class Tagged:
    """Upserts search attributes as it moves through its stages, then waits."""

    def __init__(self) -> None:
        self.finish = False

    @workflow.run
    async def run(self, customer: str) -> dict[str, Any]:
        workflow.upsert_search_attributes({"CustomerId": customer, "Stage": "started"})
        await workflow.execute_activity(record, "one", start_to_close_timeout=10)
        workflow.upsert_search_attributes({"Stage": "charged", "Amount": 42})
        await workflow.wait_condition(lambda: self.finish)
        assert workflow.info().search_attributes == workflow.search_attributes()
        return dict(workflow.info().search_attributes)

    @workflow.signal
    def done(self) -> None:
        self.finish = True


@workflow.defn
class Waiter:
    """Waits for a signal (or a long time): something for batches to act on."""

    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: "stop" in self.signals, timeout=timedelta(hours=1))
        return self.signals

    @workflow.signal
    def note(self, value: str) -> None:
        self.signals.append(value)

    @workflow.query
    def noted(self) -> list[str]:
        return list(self.signals)


@workflow.defn
class UpsertsUnregistered:
    """Upserts an attribute the namespace may not have registered yet."""

    @workflow.run
    async def run(self) -> str:
        workflow.upsert_search_attributes({"LateAttr": "v"})
        await workflow.execute_activity(record, "after", start_to_close_timeout=10)
        return "done"


@workflow.defn
class TagsFromASet:
    """Upserts a KeywordList given as a set and returns what the run then reads."""

    @workflow.run
    async def run(self, tags: list[str]) -> list[str]:
        workflow.upsert_search_attributes({"Tags": set(tags)})
        return list(workflow.info().search_attributes["Tags"])
