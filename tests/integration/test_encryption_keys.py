"""Workers whose keys cannot open a run's payloads: the run waits, nothing is
lost, and a worker holding the right keys finishes it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Region
from tests.helpers import eventually
from worker import (
    ActivityError,
    AesGcmCodec,
    ApplicationError,
    Client,
    DataConverter,
    RetryPolicy,
    Worker,
    activity,
    workflow,
)
from worker.codec import generate_key

pytestmark = pytest.mark.integration
QUEUE = "keys"


@workflow.defn(name="Collect")
class Collect:
    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.run
    async def run(self, first: str) -> str:
        await workflow.wait_condition(lambda: len(self.notes) >= 1)
        return "|".join([first, *self.notes])

    @workflow.signal
    def note(self, text: str) -> None:
        self.notes.append(text)


def converter(keys: dict[str, bytes], active: str) -> DataConverter:
    return DataConverter(codec=AesGcmCodec(keys=keys, active_key_id=active))


async def failed_tasks(client: Client, workflow_id: str) -> list[dict[str, Any]]:
    events = await client.get_workflow_handle(workflow_id).history()
    return [e for e in events if e["event_type"] == "WorkflowTaskFailed"]


async def test_a_worker_with_the_wrong_key_leaves_the_run_to_one_with_the_right_key(
    region: Region,
) -> None:
    # Same key id, other key material (a staging key deployed by mistake):
    # that worker's failed tasks are written with its key, which the right
    # worker cannot open; they must not keep it from running the workflow.
    right = converter({"k1": generate_key()}, "k1")
    wrong = converter({"k1": generate_key()}, "k1")
    async with (
        await Client.connect(region.url, data_converter=right) as client,
        await Client.connect(region.url, data_converter=wrong) as misconfigured,
    ):
        await client.create_namespace("default")
        h = await client.start_workflow(Collect, "first", id="wrong-key", task_queue=QUEUE)
        await h.signal("note", "second")
        async with Worker(misconfigured, task_queue=QUEUE, workflows=[Collect]):
            found = await eventually(
                lambda: failed_tasks(client, "wrong-key"), what="a failed workflow task"
            )
        # what the worker said, under its own key: the right client cannot read it
        assert found[0]["attributes"]["failure"]["type"] == "PayloadDecryptionError"
        async with Worker(client, task_queue=QUEUE, workflows=[Collect]):
            assert await h.result(timeout=30) == "first|second"


async def test_a_signal_under_a_key_the_worker_lacks_waits_for_a_worker_holding_it(
    region: Region,
) -> None:
    k1, k2 = generate_key(), generate_key()
    old = converter({"k1": k1}, "k1")
    rotated = converter({"k1": k1, "k2": k2}, "k2")
    async with (
        await Client.connect(region.url, data_converter=old) as client,
        await Client.connect(region.url, data_converter=rotated) as sender,
    ):
        await client.create_namespace("default")
        await client.start_workflow(Collect, "first", id="rotated", task_queue=QUEUE)
        async with Worker(client, task_queue=QUEUE, workflows=[Collect]):
            await sender.get_workflow_handle("rotated").signal("note", "under-k2")
            found = await eventually(
                lambda: failed_tasks(client, "rotated"), what="a failed workflow task"
            )
            assert found[0]["attributes"]["failure"]["type"] == "UnknownEncryptionKeyError"
            # describe says why, with the keys the failure was told under
            task = (await client.get_workflow_handle("rotated").describe())["pending_workflow_task"]
            assert "key id 'k2'" in task["last_failure"]["message"]
        async with Worker(sender, task_queue=QUEUE, workflows=[Collect]):
            assert await sender.get_workflow_handle("rotated").result(timeout=30) == (
                "first|under-k2"
            )


@activity.defn(name="shout")
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn(name="Shout")
class Shout:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(
            shout,
            text,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


async def test_an_activity_worker_lacking_the_key_fails_the_attempt_saying_so(
    region: Region,
) -> None:
    # Its attempt used to be dropped unreported: the activity waited out its
    # start-to-close timeout (ten minutes here) and then read as timed out.
    k1, k2 = generate_key(), generate_key()
    rotated = converter({"k1": k1, "k2": k2}, "k2")
    async with (
        await Client.connect(region.url, data_converter=rotated) as client,
        await Client.connect(region.url, data_converter=converter({"k1": k1}, "k1")) as old,
    ):
        await client.create_namespace("default")
        h = await client.start_workflow(Shout, "quiet", id="shout", task_queue=QUEUE)
        async with Worker(client, task_queue=QUEUE, workflows=[Shout]):

            async def attempt_failure() -> dict[str, Any] | None:
                pending = (await h.describe())["pending_activities"]
                return pending[0]["last_failure"] if pending else None

            async with Worker(old, task_queue=QUEUE, activities=[shout]):
                failure = await eventually(attempt_failure, timeout=15, what="a failed attempt")
            assert failure["type"] == "UnknownEncryptionKeyError"
            assert "key id 'k2'" in failure["message"]
            async with Worker(client, task_queue=QUEUE, activities=[shout]):
                assert await h.result(timeout=30) == "QUIET"


@workflow.defn(name="ShoutOnce")
class ShoutOnce:
    @workflow.run
    async def run(self, text: str) -> str:
        try:
            return await workflow.execute_activity(
                shout,
                text,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            assert isinstance(err.__cause__, ApplicationError)
            return f"failed: {err.__cause__.type}"


async def test_an_activity_failure_told_under_a_wrong_key_still_reaches_the_workflow(
    region: Region,
) -> None:
    # The last attempt's failure is written under the misconfigured worker's
    # key: its text cannot be read, but the workflow learns the activity
    # failed (and why, by type) instead of failing every workflow task.
    right = converter({"k1": generate_key()}, "k1")
    wrong = converter({"k1": generate_key()}, "k1")
    async with (
        await Client.connect(region.url, data_converter=right) as client,
        await Client.connect(region.url, data_converter=wrong) as misconfigured,
    ):
        await client.create_namespace("default")
        h = await client.start_workflow(ShoutOnce, "quiet", id="shout-once", task_queue=QUEUE)
        async with (
            Worker(client, task_queue=QUEUE, workflows=[ShoutOnce]),
            Worker(misconfigured, task_queue=QUEUE, activities=[shout]),
        ):
            assert await h.result(timeout=30) == "failed: PayloadDecryptionError"


@activity.defn(name="charge")
async def charge() -> str:
    raise ApplicationError("card declined", type="Declined", non_retryable=True)


@workflow.defn(name="Pay")
class Pay:
    @workflow.run
    async def run(self) -> str:
        try:
            return await workflow.execute_activity(
                charge, task_queue="keys-activities", start_to_close_timeout=timedelta(seconds=30)
            )
        except ActivityError as err:
            return f"failed: {err.__cause__}"  # code may decide on a failure's text


async def test_a_failure_told_under_a_key_the_worker_lacks_waits_for_a_worker_holding_it(
    region: Region,
) -> None:
    # A rotation half done: the activity workers write under k2 already, a
    # workflow worker holds only k1. It must not read the activity's failure
    # as 'Encoded failure' and close the run on that: its task fails, as for
    # any payload under a key it lacks, until a worker holding k2 runs it.
    k1, k2 = generate_key(), generate_key()
    old = converter({"k1": k1}, "k1")
    rotated = converter({"k1": k1, "k2": k2}, "k2")
    async with (
        await Client.connect(region.url, data_converter=old) as client,
        await Client.connect(region.url, data_converter=rotated) as new,
    ):
        await client.create_namespace("default")
        h = await client.start_workflow(Pay, id="pay", task_queue=QUEUE)
        async with (
            Worker(new, task_queue="keys-activities", activities=[charge]),
            Worker(client, task_queue=QUEUE, workflows=[Pay]),
        ):
            found = await eventually(lambda: failed_tasks(client, "pay"), what="a failed task")
            assert found[0]["attributes"]["failure"]["type"] == "UnknownEncryptionKeyError"
        assert (await h.describe())["execution"]["status"] == "running"
        async with Worker(new, task_queue=QUEUE, workflows=[Pay]):
            done = new.get_workflow_handle("pay")  # its result is under k2
            assert await done.result(timeout=30) == "failed: card declined"
