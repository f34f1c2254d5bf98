"""Worker versioning on a real store: pinned and auto-upgrade runs, current and
ramping builds, overrides, drainage, a pinned run with no poller, and an
upgrade at continue-as-new.

Each build is a Worker with ``deployment=("shop", BUILD)`` polling the same
task queue; the routing is checked in the histories (every completed workflow
task records the version that ran it).
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.apps.versioned import ACTIVITIES, V1, V2, V2_BAD
from tests.conftest import Region
from tests.helpers import Proc, baton_json, eventually
from tests.versioning_helpers import registered
from worker import Client, Worker
from worker.errors import (
    DeploymentNotFoundError,
    InvalidArgumentError,
    NoPollersError,
    RevisionMismatchError,
)

pytestmark = pytest.mark.integration
QUEUE = "shop"


def build(client: Client, build_id: str, workflows: list[type], **kw: Any) -> Worker:
    return Worker(
        client,
        task_queue=QUEUE,
        workflows=workflows,
        activities=ACTIVITIES,
        deployment=("shop", build_id),
        **kw,
    )


async def versions_of(client: Client, wid: str, run_id: str | None = None) -> list[str]:
    """The version that ran each completed workflow task of the run, in order."""
    events = await client.get_workflow_handle(wid, run_id=run_id).history()
    return [
        e["attributes"].get("worker_version")
        for e in events
        if e["event_type"] == "WorkflowTaskCompleted"
    ]


async def version(client: Client, build_id: str) -> dict[str, Any]:
    d = await client.describe_deployment("shop")
    return next(v for v in d["versions"] if v["build_id"] == build_id)


def build_proc(url: str, build_id: str, code: str, log: Path) -> Proc:
    """A worker process of build ``build_id`` running ``code``."""
    app = [sys.executable, "-m", "tests.apps.worker_app", "--url", url, "--task-queue", QUEUE]
    version = ["--deployment", "shop", "--build", build_id, "--code", code]
    return Proc([*app, *version], log).start()


async def test_blue_green_pinned_runs_finish_on_blue_and_blue_drains(
    client: Client, region: Region, tmp_path: Path
) -> None:
    blue = build_proc(region.url, "1", "v1", tmp_path / "blue.log")
    green: Proc | None = None
    try:
        await registered(client, "1")
        await client.set_current_version("shop", "1")
        olds = [
            await client.start_workflow("Order", i, id=f"old-{i}", task_queue=QUEUE)
            for i in range(100)
        ]

        async def pinned_on_1() -> bool:
            n = await client.count_workflows("VersioningBehavior = 'pinned' AND BuildId = '1'")
            return int(n["count"]) == 100

        await eventually(pinned_on_1, timeout=60, what="100 runs pinned on build 1")
        green = build_proc(region.url, "2", "v2", tmp_path / "green.log")
        await registered(client, "2")
        await client.set_current_version("shop", "2")
        news = [
            await client.start_workflow("Order", i, id=f"new-{i}", task_queue=QUEUE)
            for i in range(10)
        ]
        v1 = await version(client, "1")
        assert (v1["status"], v1["open_pinned"]) == ("draining", 100)
        # a query goes to a worker of the run's version, which can replay it
        assert await olds[0].query("waiting") is True
        for h in olds + news:
            await h.signal("proceed")
        assert {await h.result(timeout=60) for h in olds} == {"v1"}
        # read right after the last close: drained, since that close
        v1 = await version(client, "1")
        closes = [
            datetime.fromisoformat((await h.describe())["execution"]["close_time"]) for h in olds
        ]
        assert (v1["status"], v1["open_pinned"]) == ("drained", 0)
        assert datetime.fromisoformat(v1["drained_since"]) == max(closes)
        assert {await h.result(timeout=60) for h in news} == {"v2"}
        assert (await version(client, "2"))["status"] == "current"
        # moving a run onto the drained build makes it draining again
        back = await client.start_workflow("Order", 999, id="moved-back", task_queue=QUEUE)

        async def on_2() -> bool:
            return (await back.describe())["execution"]["build_id"] == "2"

        await eventually(on_2, timeout=20, what="the run pinned on build 2")
        await back.update_versioning("pinned", version="shop:1", reason="back to blue")
        v1 = await version(client, "1")
        assert (v1["status"], v1["open_pinned"], v1["drained_since"]) == ("draining", 1, None)
        await back.signal("proceed")
        assert await back.result(timeout=30) == "v1"
        assert (await version(client, "1"))["status"] == "drained"
        ran = await versions_of(client, back.id)  # build 2 until the override, then 1
        assert ran[0] == "shop:2" and ran[-1] == "shop:1" and ran == sorted(ran, reverse=True)
    finally:
        blue.stop()
        if green is not None:
            green.stop()
    for h in olds:
        assert set(await versions_of(client, h.id)) == {"shop:1"}, h.id
    for h in news:
        assert set(await versions_of(client, h.id)) == {"shop:2"}, h.id


async def test_auto_upgrade_moves_at_the_next_task_and_overrides_do_what_they_say(
    client: Client,
) -> None:
    async with build(client, "1", V1), build(client, "2", V2):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        flows = [
            await client.start_workflow("Flow", id=f"f-{i}", task_queue=QUEUE) for i in range(6)
        ]

        async def step(h: Any, item: str) -> str:
            """Send one item; return the version that ran the task it caused."""
            before = len(await versions_of(client, h.id))
            await h.signal("next", item)

            async def ran() -> bool:
                return len(await versions_of(client, h.id)) >= before + 2

            await eventually(ran, timeout=20, what=f"{h.id} took {item}")
            return (await versions_of(client, h.id))[before]

        assert [await step(h, "a") for h in flows] == ["shop:1"] * 6
        await client.set_current_version("shop", "2")
        assert [await step(h, "b") for h in flows] == ["shop:2"] * 6

        pinned, once = flows[0], flows[1]
        await pinned.update_versioning("pinned", version="shop:1", reason="hold it")
        assert await step(pinned, "c") == "shop:1"
        assert await step(pinned, "d") == "shop:1"
        d = await pinned.describe()
        assert d["execution"]["versioning_behavior"] == "pinned"
        assert d["versioning"]["override"] == {"kind": "pinned", "build_id": "1"}
        await pinned.update_versioning(None, reason="let it go")
        assert await step(pinned, "e") == "shop:2"

        await once.update_versioning("one-time", version="shop:1")
        assert await step(once, "c") == "shop:1"
        assert await step(once, "d") == "shop:2"
        # a build no worker of the deployment polled: refused, nothing recorded
        for kind in ("pinned", "one-time"):
            with pytest.raises(DeploymentNotFoundError, match="no version '9'"):
                await pinned.update_versioning(kind, version="shop:9", reason="a typo")
        assert (await pinned.describe())["versioning"]["override"] is None

        # the overrides are in the history
        events = await pinned.history()
        updated = [e for e in events if e["event_type"] == "WorkflowExecutionOptionsUpdated"]
        assert [u["attributes"]["reason"] for u in updated] == ["hold it", "let it go"]

        # a batch override by query pins the other four to build 1
        job = await client.start_batch(
            "WorkflowType = 'Flow' AND WorkflowId STARTS_WITH 'f-' AND WorkflowId > 'f-1'",
            "update-versioning",
            reason="pin the rest",
            params={"override": {"kind": "pinned", "deployment": "shop", "build_id": "1"}},
            rps=100,
        )

        async def batch_done() -> bool:
            return (await client.describe_batch(job["job_id"]))["state"] != "running"

        await eventually(batch_done, timeout=60, what="the batch override")
        assert (await client.describe_batch(job["job_id"]))["done"] == 4
        n = await client.count_workflows("VersioningBehavior = 'pinned' AND BuildId = '1'")
        assert int(n["count"]) == 4
        assert [await step(h, "z") for h in flows[2:]] == ["shop:1"] * 4
        for h in flows:
            await h.signal("finish")
        for h in flows:
            await h.result(timeout=30)


async def test_an_override_onto_another_build_does_not_wait_on_the_old_workers_sticky_queue(
    client: Client,
) -> None:
    # build 1 would hold a task on its sticky queue for 30 s before it moves
    async with build(client, "1", V1, sticky_schedule_to_start=30), build(client, "2", V2):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Flow", id="moved", task_queue=QUEUE)

        async def tasks_ran(n: int) -> bool:
            return len(await versions_of(client, h.id)) >= n

        await eventually(lambda: tasks_ran(1), timeout=20, what="the first task")
        await h.signal("next", "a")  # a task that schedules its activity, and one after it
        await eventually(lambda: tasks_ran(3), timeout=20, what="build 1 took the first item")
        await h.update_versioning("pinned", version="shop:2", reason="onto the fix")
        await h.signal("next", "b")
        await eventually(lambda: tasks_ran(5), timeout=10, what="build 2 took the next at once")
        assert await versions_of(client, h.id) == ["shop:1"] * 3 + ["shop:2"] * 2
        await h.signal("finish")
        await h.result(timeout=30)


async def test_auto_upgrade_onto_incompatible_code_fails_visibly_and_a_pin_back_finishes_it(
    client: Client,
) -> None:
    async with build(client, "1", V1), build(client, "2", V2_BAD):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Flow", id="fragile", task_queue=QUEUE)
        await h.signal("next", "a")

        async def one_done() -> bool:
            d = await h.describe()
            kinds = [e["event_type"] for e in await h.history()]
            return (
                "ActivityTaskCompleted" in kinds
                and not d["pending_workflow_task"]
                and not d["pending_activities"]
            )

        await eventually(one_done, timeout=20, what="the first item")
        await client.set_current_version("shop", "2")
        await h.signal("next", "b")

        async def failing() -> list[dict[str, Any]]:
            return [
                e
                for e in await h.history()
                if e["event_type"] == "WorkflowTaskFailed"
                and e["attributes"].get("cause") == "NonDeterminism"
            ]

        await eventually(failing, timeout=30, what="a non-determinism failure on build 2")
        failed = (await failing())[0]["attributes"]
        assert failed["worker_version"] == "shop:2"
        assert "other_step" in failed["failure"]["message"]
        assert (await h.describe())["execution"]["status"] == "running"
        await h.update_versioning("pinned", version="shop:1", reason="back to blue")
        await h.signal("finish")
        assert await h.result(timeout=30) == ["did a", "did b"]
        assert (await versions_of(client, h.id))[-1] == "shop:1"


async def test_a_pinned_run_with_no_poller_waits_says_so_and_finishes_when_one_returns(
    client: Client,
) -> None:
    async with build(client, "2", V2):
        async with build(client, "1", V1):
            await registered(client, "1", "2")
            await client.set_current_version("shop", "1")
            h = await client.start_workflow("Order", 7, id="orphan", task_queue=QUEUE)

            async def pinned() -> bool:
                return (await h.describe())["execution"]["build_id"] == "1"

            await eventually(pinned, timeout=20, what="the run pinned on build 1")
        await client.set_current_version("shop", "2")
        await h.signal("proceed")

        async def waits() -> dict[str, Any] | None:
            v = (await h.describe())["versioning"]
            return v if v and v["waiting_for_poller"] else None

        view = await eventually(waits, timeout=20, what="describe says it waits")
        assert view["next_task_version"] == "shop:1"
        assert "never handed to another version" in view["note"]
        assert (await version(client, "1"))["waiting_no_poller"] == 1
        await asyncio.sleep(1.0)  # build 2 polls the same queue all along
        assert set(await versions_of(client, h.id)) == {"shop:1"}
        # paused, it waits for an unpause, not for a poller
        await h.pause("look first")
        view = (await h.describe())["versioning"]
        assert not view["waiting_for_poller"] and "note" not in view
        assert (await version(client, "1"))["waiting_no_poller"] == 0
        await h.unpause()
        assert (await h.describe())["versioning"]["waiting_for_poller"]
        async with build(client, "1", V1):
            assert await h.result(timeout=30) == "v1"
    assert set(await versions_of(client, h.id)) == {"shop:1"}


async def tick(client: Client, wid: str) -> str:
    """Give the current run of ``wid`` one unit of work; return the run that is
    current once it is done (a new one if the run continued-as-new)."""
    h = client.get_workflow_handle(wid)
    d = await h.describe()
    run, done_before = d["execution"]["run_id"], len(await versions_of(client, wid))
    await h.signal("tick")

    async def settled() -> str | None:
        d = await h.describe()
        # a new run (continued-as-new) is done once its first task is
        if d["pending_activities"] or d["pending_workflow_task"]:
            return None
        if d["execution"]["run_id"] != run:
            return str(d["execution"]["run_id"])
        return run if len(await versions_of(client, wid, run)) >= done_before + 2 else None

    return await eventually(settled, timeout=20, what=f"{wid} ticked")


async def test_a_long_pinned_run_upgrades_at_continue_as_new_and_the_loop_guard_holds(
    client: Client,
) -> None:
    async with build(client, "1", V1), build(client, "2", V2):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        first = await client.start_workflow("Long", 0, id="long", task_queue=QUEUE)
        held = await client.start_workflow("Long", 0, id="held", task_queue=QUEUE)
        assert await tick(client, "long") == first.run_id  # nothing to move to
        await held.update_versioning("pinned", version="shop:1", reason="operator hold")
        await client.set_current_version("shop", "2")
        second = await tick(client, "long")
        assert second != first.run_id
        d = await client.get_workflow_handle("long").describe()
        assert d["execution"]["continued_from_run_id"] == first.run_id
        assert (d["execution"]["build_id"], d["execution"]["versioning_behavior"]) == (
            "2",
            "pinned",
        )
        assert set(await versions_of(client, "long", first.run_id)) == {"shop:1"}
        assert set(await versions_of(client, "long", second)) == {"shop:2"}
        assert await tick(client, "long") == second  # on its target now: stays

        # Held on build 1 by an operator, each run would continue-as-new and
        # land on build 1 again: the guard stops it after three in a row.
        runs = [held.run_id]
        for _ in range(4):
            runs.append(await tick(client, "held"))
        assert len(set(runs)) == 4 and runs[-1] == runs[-2]
        for wid in ("held", "long"):
            await client.get_workflow_handle(wid).signal("finish")
        assert await client.get_workflow_handle("held").result(timeout=30) == 3
        assert await client.get_workflow_handle("long").result(timeout=30) == 1
        assert (await client.get_workflow_handle("held").describe())["execution"]["build_id"] == "1"


async def test_deployment_changes_are_checked_and_leave_nothing_changed_when_refused(
    client: Client,
) -> None:
    with pytest.raises(DeploymentNotFoundError):
        await client.set_current_version("shop", "1")
    with pytest.raises(ValueError, match="versioning behaviour"):
        from tests.apps.visibility import Waiter

        build(client, "1", [Waiter])
    async with build(client, "1", V1):
        await registered(client, "1")
        first = await client.set_current_version("shop", "1", expect_revision=0)
        assert first["revision"] == 1
    with pytest.raises(DeploymentNotFoundError):
        await client.set_ramping_version("shop", "9", 10)
    with pytest.raises(RevisionMismatchError):
        await client.set_current_version("shop", None, expect_revision=0)
    with pytest.raises(InvalidArgumentError):
        await client.set_ramping_version("shop", "1", 10)  # the current one cannot ramp
    assert (await client.describe_deployment("shop"))["revision"] == 1
    # a build whose workers stopped: refused, unless asked
    async with build(client, "2", V2):
        await registered(client, "2")
    with pytest.raises(NoPollersError):
        await client.set_ramping_version("shop", "2", 10)
    with pytest.raises(InvalidArgumentError, match="percent"):  # not all of it
        await client.set_ramping_version("shop", "2", None, allow_no_pollers=True)  # type: ignore[arg-type]
    assert (await client.describe_deployment("shop"))["revision"] == 1
    ramp = await client.set_ramping_version("shop", "2", 10, allow_no_pollers=True)
    assert (ramp["ramping"], ramp["ramping_percent"], ramp["revision"]) == ("2", 10.0, 2)


async def test_the_cli_routes_builds_refuses_a_stale_revision_and_overrides_a_run(
    client: Client, region: Region
) -> None:
    async def baton(*args: str) -> tuple[int, Any, str]:
        return await baton_json(region.config_path, *args)

    async with build(client, "1", V1), build(client, "2", V2):
        await registered(client, "1", "2")
        code, out, _ = await baton("deployment", "set-current", "shop", "1")
        assert code == 0 and (out["current"], out["revision"]) == ("1", 1)
        code, out, _ = await baton(
            "deployment", "set-ramping", "shop", "2", "--percent", "25", "--expect-revision", "0"
        )
        assert code != 0 and out["error"]["code"] == "REVISION_MISMATCH"
        assert (await client.describe_deployment("shop"))["ramping"] is None
        code, out, _ = await baton(
            "deployment", "set-ramping", "shop", "2", "--percent", "25", "--expect-revision", "1"
        )
        assert code == 0 and (out["ramping"], out["ramping_percent"]) == ("2", 25.0)
        code, out, _ = await baton("deployment", "set-current", "shop", "9")
        assert code != 0 and out["error"]["code"] == "DEPLOYMENT_NOT_FOUND"
        code, out, _ = await baton("deployment", "list")
        assert code == 0 and [d["deployment"] for d in out] == ["shop"]
        h = await client.start_workflow("Flow", id="cli-flow", task_queue=QUEUE)
        code, out, _ = await baton(
            "workflow",
            "update-versioning",
            "cli-flow",
            "--override",
            "pinned",
            "--version",
            "shop:1",
            "--reason",
            "from the cli",
        )
        assert code == 0 and out["changed"] and out["next_task_version"] == "shop:1"
        code, out, _ = await baton(
            "workflow", "update-versioning", "cli-flow", "--override", "pinned"
        )
        assert code != 0 and "--version" in json.dumps(out)
        code, out, _ = await baton("deployment", "describe", "shop")
        assert code == 0
        assert {v["build_id"]: v["status"] for v in out["versions"]} == {
            "1": "current",
            "2": "ramping",
        }
        assert {v["build_id"]: v["open_pinned"] for v in out["versions"]} == {"1": 1, "2": 0}
        assert all(v["live_pollers"] >= 1 for v in out["versions"])
        code, out, _ = await baton("workflow", "update-versioning", "cli-flow", "--unset")
        assert code == 0 and out["changed"]
        assert (await h.describe())["versioning"]["override"] is None
        code, out, _ = await baton(
            "workflow", "update-versioning", "cli-flow", "--one-time", "shop:2"
        )
        assert code == 0 and out["next_task_version"] == "shop:2"
        await h.signal("finish")
        assert await h.result(timeout=30) == []


async def test_a_retried_versioning_override_answers_as_the_first_did(client: Client) -> None:
    """The same request id again answered only ``{run_id, changed}``: no
    ``next_task_version`` (nor ``tasks_rerouted``)."""
    h = await client.start_workflow("Manual", id="retried-override", task_queue="by-hand")
    first = await h.update_versioning("auto-upgrade", reason="why", request_id="v-1")
    again = await h.update_versioning("auto-upgrade", reason="why", request_id="v-1")
    assert first["changed"] and not again["changed"]
    assert set(again) == set(first)
    assert again["next_task_version"] == first["next_task_version"]
    assert again["tasks_rerouted"] == 0


async def test_an_override_already_in_place_records_nothing(client: Client) -> None:
    """The same override again (a command run twice, a batch run again) answers
    ``changed: false`` and adds no event, as a pause already in place does."""
    async with build(client, "1", V1), build(client, "2", V2):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Flow", id="override-twice", task_queue=QUEUE)
        # (not one-time: the next workflow task may take it between the two)
        for kind, version in (("pinned", "shop:2"), ("auto-upgrade", None), (None, None)):
            first = await h.update_versioning(kind, version=version)
            again = await h.update_versioning(kind, version=version)
            assert first["changed"] and not again["changed"], (kind, again)
            assert again["next_task_version"] == first["next_task_version"]

        async def no_task_running() -> bool:
            # an input that comes while a workflow task runs is written after it
            task = (await h.describe())["pending_workflow_task"]
            return task is None or task["started_event_id"] is None

        await eventually(no_task_running, what="the workflow task to end")
        events = [e["event_type"] for e in await h.history()]
        assert events.count("WorkflowExecutionOptionsUpdated") == 3, events
        await h.terminate()


async def test_a_build_drained_by_overrides_says_since_when(client: Client) -> None:
    """Its last pinned runs left it open, moved off by overrides (onto another
    build, or to auto-upgrade): drained since the last of them left, as a
    close would say."""
    async with build(client, "1", V1), build(client, "2", V2):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        runs = [
            await client.start_workflow("Order", i, id=f"moved-{i}", task_queue=QUEUE)
            for i in range(2)
        ]

        async def pinned_on_1() -> bool:
            n = await client.count_workflows("VersioningBehavior = 'pinned' AND BuildId = '1'")
            return int(n["count"]) == 2

        await eventually(pinned_on_1, timeout=30, what="2 runs pinned on build 1")
        await client.set_current_version("shop", "2")
        await runs[0].update_versioning("pinned", version="shop:2", reason="move")
        assert (await version(client, "1"))["status"] == "draining"
        # the run that left last left within this call (its history event may be
        # written later, after a workflow task then running: not its time)
        before_last = datetime.now(UTC)
        await runs[1].update_versioning("auto-upgrade", reason="move")
        after_last = datetime.now(UTC)
        v1 = await version(client, "1")
        assert (v1["status"], v1["open_pinned"]) == ("drained", 0)
        assert v1["drained_since"] is not None, v1
        assert before_last <= datetime.fromisoformat(v1["drained_since"]) <= after_last, v1
        for h in runs:
            await h.terminate()
