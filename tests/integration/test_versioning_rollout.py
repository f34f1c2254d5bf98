"""Worker versioning as a rollout pipeline drives it: a ramp held at 0 percent,
steps repeated after a lost answer, and a batch override checked before it is
stored.

Builds are in-process Workers of the ``shop`` deployment (see
``tests/apps/versioned.py``); what is checked is what the deployment's
description and the runs' histories say.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.apps.versioned import ACTIVITIES, V1
from tests.conftest import Region
from tests.helpers import baton_json, eventually
from tests.versioning_helpers import registered
from tests.versioning_helpers import shop_worker as build
from versioning import ramp_bucket
from worker import Client, Worker
from worker.errors import (
    DeploymentNotFoundError,
    InvalidArgumentError,
    NoPollersError,
    QueryTimedOutError,
    RevisionMismatchError,
)

pytestmark = pytest.mark.integration
QUEUE = "shop"


async def statuses(client: Client) -> dict[str, str]:
    d = await client.describe_deployment("shop")
    return {v["build_id"]: v["status"] for v in d["versions"]}


def routing(d: dict[str, Any]) -> tuple[Any, ...]:
    return (d["current"], d["ramping"], d["ramping_percent"])


async def test_a_ramp_held_at_zero_percent_keeps_its_build_ramping_with_no_ids(
    client: Client,
) -> None:
    """Ramping a build to 0 percent once ended any ramp: the build showed as
    drained (a cleanup job would retire it) and the ramp was lost. As in
    Temporal it now stays the ramping version with no ids; no build at 0 ends it."""
    async with build(client, "1"), build(client, "2"):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        await client.set_ramping_version("shop", "2", 30)
        held = await client.set_ramping_version("shop", "2", 0)
        assert routing(held) == ("1", "2", 0.0)
        assert routing(await client.describe_deployment("shop")) == ("1", "2", 0.0)
        assert await statuses(client) == {"1": "current", "2": "ramping"}
        # no id goes to a ramp at 0 percent, even the lowest bucket
        wid = min((f"held-{i}" for i in range(200)), key=ramp_bucket)
        h = await client.start_workflow("Flow", id=wid, task_queue=QUEUE)
        await h.signal("next", "a")
        await h.signal("finish")
        assert await h.result(timeout=30) == ["did a"]
        events = await h.history()
        ran = {
            e["attributes"]["worker_version"]
            for e in events
            if e["event_type"] == "WorkflowTaskCompleted"
        }
        assert ran == {"shop:1"}
        # the held ramp resumes where the pipeline takes it
        assert routing(await client.set_ramping_version("shop", "2", 50)) == ("1", "2", 50.0)
        # no build at 0 percent ends the ramp
        ended = await client.set_ramping_version("shop", None, 0)
        assert routing(ended) == ("1", None, 0.0)
        assert (await statuses(client))["2"] == "drained"


async def test_a_step_repeated_after_a_lost_answer_succeeds_and_changes_nothing(
    client: Client,
) -> None:
    """A pipeline sends set-current with --expect-revision N; the change commits
    but the answer is lost, so the SDK (or the pipeline) sends it again. That
    was REVISION_MISMATCH, naming a change the pipeline itself made; and every
    repeat bumped the revision, refusing other pipelines' next step."""
    async with build(client, "1"), build(client, "2"):
        await registered(client, "1", "2")
        first = await client.set_current_version("shop", "1", expect_revision=0)
        again = await client.set_current_version("shop", "1", expect_revision=0)
        assert (first["changed"], first["revision"]) == (True, 1)
        assert (again["changed"], again["revision"], again["tasks_rerouted"]) == (False, 1, 0)
        ramp = await client.set_ramping_version("shop", "2", 10, expect_revision=1)
        ramp_again = await client.set_ramping_version("shop", "2", 10, expect_revision=1)
        assert (ramp["changed"], ramp_again["changed"], ramp_again["revision"]) == (True, False, 2)
        assert routing(ramp_again) == ("1", "2", 10.0)
        end = await client.set_ramping_version("shop", None, 0, expect_revision=2)
        end_again = await client.set_ramping_version("shop", None, 0, expect_revision=2)
        assert (end["changed"], end_again["changed"], end_again["revision"]) == (True, False, 3)
    # a real change still names the revision it expects
    with pytest.raises(RevisionMismatchError):
        await client.set_current_version("shop", "2", expect_revision=2, allow_no_pollers=True)
    # the build in place, asked again after its workers stopped: nothing to refuse
    assert (await client.set_current_version("shop", "1"))["changed"] is False
    assert (await client.describe_deployment("shop"))["revision"] == 3


async def test_a_batch_override_onto_a_build_the_deployment_lacks_is_refused_before_it_is_stored(
    client: Client,
) -> None:
    """A batch pinning runs to a mistyped build was stored and run: a durable
    job that failed on every run it matched, and `batch start` exited 0."""
    async with build(client, "1"), build(client, "2"):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Flow", id="batched", task_queue=QUEUE)
        query = "WorkflowType = 'Flow'"
        pin = {"kind": "pinned", "deployment": "shop"}
        with pytest.raises(DeploymentNotFoundError, match="has no version '9'"):
            await client.start_batch(
                query,
                "update-versioning",
                reason="r",
                params={"override": {**pin, "build_id": "9"}},
            )
        with pytest.raises(InvalidArgumentError, match="not valid"):
            await client.start_batch(
                query,
                "update-versioning",
                reason="r",
                params={"override": {**pin, "build_id": "a b"}},
            )
        assert await client.list_batches() == []
        job = await client.start_batch(
            query, "update-versioning", reason="r", params={"override": {**pin, "build_id": "2"}}
        )

        async def pinned_on_2() -> bool:
            d = await client.describe_batch(job["job_id"])
            return (d["state"], d["done"]) == ("completed", 1)

        await eventually(pinned_on_2, timeout=30, what="the batch pinned the run to build 2")
        assert (await h.describe())["versioning"]["override"] == {"kind": "pinned", "build_id": "2"}


async def test_an_auto_upgrade_runs_waiting_activity_follows_set_current_off_the_old_build(
    client: Client,
) -> None:
    """An auto-upgrade run's activity waiting for build 1 (its workers busy,
    or gone) stayed tagged for build 1 after set-current 2, and so did every
    retry: build 1 showed drained (no pinned run), a team retired it, and the
    run waited for it for ever. It now goes where the run's next task goes."""
    # build 1 runs the workflow code only: its activity waits for a poller of build 1
    only_code = Worker(client, task_queue=QUEUE, workflows=V1, deployment=("shop", "1"))
    async with only_code, build(client, "2"):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Flow", id="follows", task_queue=QUEUE)
        await h.signal("next", "a")

        async def activity_waits() -> bool:
            return bool((await h.describe())["pending_activities"])

        await eventually(activity_waits, timeout=20, what="the activity scheduled by build 1")
        moved = await client.set_current_version("shop", "2")
        assert moved["tasks_rerouted"] == 1
        await h.signal("finish")
        assert await h.result(timeout=20) == ["did a"]
        assert (await statuses(client))["1"] == "drained"


async def test_an_override_onto_a_build_that_does_not_poll_the_runs_queue_is_refused(
    client: Client,
) -> None:
    """Pinning a run of task queue "mail" to shop:2, whose workers poll only
    "shop", was accepted: its tasks waited on "mail" for ever, and describe
    did not say it waited (shop:2 had live pollers, on "shop")."""
    async with build(client, "1"), build(client, "2"):
        await registered(client, "1", "2")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Flow", id="on-mail", task_queue="mail")
        before = await h.history()
        for kind in ("pinned", "one-time"):
            with pytest.raises(InvalidArgumentError, match="not the run's 'mail'"):
                await h.update_versioning(kind, version="shop:2")
        assert await h.history() == before
        assert (await h.describe())["versioning"] is None
        # the run of "shop" is pinned as asked
        ok = await client.start_workflow("Flow", id="on-shop", task_queue=QUEUE)
        res = await ok.update_versioning("pinned", version="shop:2")
        assert res["next_task_version"] == "shop:2"
        await ok.signal("finish")
        assert await ok.result(timeout=20) == []
        events = await ok.history()
        ran = [
            e["attributes"]["worker_version"]
            for e in events
            if e["event_type"] == "WorkflowTaskCompleted"
        ]
        assert ran[-1] == "shop:2", [(e["event_type"], e["attributes"]) for e in events]
        await h.terminate("done")


async def test_refusals_say_what_to_do_and_change_nothing(client: Client, region: Region) -> None:
    async def baton(*args: str) -> dict[str, Any]:
        code, out, _ = await baton_json(region.config_path, *args)
        assert code != 0
        return dict(out["error"])

    async with build(client, "1"):
        await registered(client, "1")
        await client.set_current_version("shop", "1")
        await client.start_workflow("Flow", id="refusals", task_queue=QUEUE)
        err = await baton("deployment", "set-current", "shop", "9")
        assert err["code"] == "DEPLOYMENT_NOT_FOUND"
        assert "deployment=('shop', '9')" in err["message"]
        err = await baton("deployment", "describe", "shopp")
        assert err["code"] == "DEPLOYMENT_NOT_FOUND"
        assert "its deployments are shop" in err["message"]
        err = await baton("deployment", "set-current", "shop", " ")
        assert err["code"] == "USAGE_ERROR"
        assert "' ' is empty: give a build id, or --unversioned" in err["message"]
        for version in (":1", "shop:"):
            err = await baton("workflow", "update-versioning", "refusals", "--pinned", version)
            assert err["code"] == "INVALID_ARGUMENT"
            assert "both parts" in err["message"]
        d = await client.describe_deployment("shop")
        assert (d["current"], d["revision"]) == ("1", 1)
        assert (await client.get_workflow_handle("refusals").describe())["versioning"][
            "override"
        ] is None


async def test_a_build_that_left_a_task_queue_of_the_current_one_is_not_made_current_silently(
    client: Client,
) -> None:
    """Build 1 polls "shop" and "mail", build 2 only "shop": set-current 2 was
    accepted, and every new run on "mail" waited there for ever, while describe
    said it did not wait (build 2 had live pollers, on "shop")."""
    mail_1 = Worker(
        client, task_queue="mail", workflows=V1, activities=ACTIVITIES, deployment=("shop", "1")
    )
    async with build(client, "1"), mail_1, build(client, "2"):
        await registered(client, "1", "2")

        async def both_queues() -> bool:
            d = await client.describe_deployment("shop")
            return {v["build_id"]: v["task_queues"] for v in d["versions"]}["1"] == ["mail", "shop"]

        await eventually(both_queues, timeout=20, what="build 1 polling shop and mail")
        await client.set_current_version("shop", "1")
        with pytest.raises(NoPollersError, match="mail"):
            await client.set_current_version("shop", "2")
        with pytest.raises(NoPollersError, match="mail"):
            await client.set_ramping_version("shop", "2", 10)
        assert routing(await client.describe_deployment("shop")) == ("1", None, 0.0)
        # asked for anyway: a run on "mail" says it waits, and for what
        await client.set_current_version("shop", "2", allow_no_pollers=True)
        h = await client.start_workflow("Flow", id="on-mail", task_queue="mail")
        v = (await h.describe())["versioning"]
        assert (v["next_task_version"], v["waiting_for_poller"]) == ("shop:2", True)
        assert "on task queue 'mail'" in v["note"]
        await h.terminate("done")


async def test_a_query_no_worker_of_the_runs_version_answers_names_that_version(
    client: Client,
) -> None:
    """Build 1 gone, build 2 up: a query of a run pinned to build 1 timed out
    asking 'is a worker polling task queue shop?', and one was (build 2's)."""
    async with build(client, "1"):
        await registered(client, "1")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Order", 1, id="held-query", task_queue=QUEUE)

        async def pinned() -> bool:
            v = (await h.describe()).get("versioning") or {}
            return v.get("effective_behavior") == "pinned"

        await eventually(pinned, timeout=20, what="the run pinned to build 1")
    async with build(client, "2"):
        with pytest.raises(QueryTimedOutError, match="a worker of shop:1 polling task queue"):
            await h.query("waiting", timeout=2)
        await h.terminate("done")


async def test_set_current_unversioned_sends_an_auto_upgrade_runs_waiting_activity_back_too(
    client: Client,
) -> None:
    """Rolling a deployment back to unversioned workers moved an auto-upgrade
    run's workflow tasks there, but its waiting activity stayed on build 1."""
    only_code = Worker(client, task_queue=QUEUE, workflows=V1, deployment=("shop", "1"))
    unversioned = Worker(client, task_queue=QUEUE, workflows=[], activities=ACTIVITIES)
    async with only_code, unversioned:
        await registered(client, "1")
        await client.set_current_version("shop", "1")
        h = await client.start_workflow("Flow", id="goes-back", task_queue=QUEUE)
        await h.signal("next", "a")

        async def activity_waits() -> bool:
            return bool((await h.describe())["pending_activities"])

        await eventually(activity_waits, timeout=20, what="the activity scheduled by build 1")
        moved = await client.set_current_version("shop", None)
        assert moved["tasks_rerouted"] == 1

        async def ran() -> bool:
            acts = (await h.describe())["pending_activities"]
            return not acts

        await eventually(ran, timeout=20, what="the activity run by an unversioned worker")
        await h.terminate("done")
