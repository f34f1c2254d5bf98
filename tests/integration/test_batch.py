"""Batch jobs on one region: terminate, signal, stop, and the refusals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import pytest

from store.batch import job as batch_job
from tests.apps.visibility import Waiter
from tests.conftest import Region
from tests.helpers import eventually
from worker import Client, DataConverter, Worker
from worker._http import ns_path
from worker.codec import AesGcmCodec, generate_key
from worker.errors import (
    BatchAlreadyExistsError,
    BatchNotFoundError,
    InvalidArgumentError,
    InvalidQueryError,
    PayloadTooLargeError,
)

pytestmark = pytest.mark.integration
QUEUE = "batch"


async def finished(client: Client, job_id: str) -> dict[str, object]:
    async def done() -> dict[str, object] | None:
        d = await client.describe_batch(job_id)
        return d if d["state"] != "running" else None

    return await eventually(done, timeout=60, interval=0.3, what=f"batch {job_id} ended")


async def test_batch_terminate_acts_once_on_each_match(client: Client, region: Region) -> None:
    for i in range(30):
        await client.start_workflow(Waiter, id=f"w-{i:02d}", task_queue=QUEUE)
    await client.start_workflow("Other", id="other", task_queue=QUEUE)
    started = await client.start_batch(
        "WorkflowType = 'Waiter'", "terminate", reason="cleanup", rps=200, job_id="t1"
    )
    assert started == {"job_id": "t1", "run_id": started["run_id"], "started": True}
    d = await finished(client, "t1")
    assert (d["state"], d["done"], d["skipped"], d["failed"]) == ("completed", 30, 0, 0)
    assert d["operation"] == {"kind": "terminate", "params": {}}
    for i in range(30):
        events = await client.get_workflow_handle(f"w-{i:02d}").history()
        ends = [e for e in events if e["event_type"] == "WorkflowExecutionTerminated"]
        assert len(ends) == 1 and ends[0]["attributes"]["reason"] == "cleanup"
    assert (await client.get_workflow_handle("other").describe())["execution"][
        "status"
    ] == "running"
    # the same job again is the same job; a second job over the same runs skips them
    again = await client.start_batch(
        "WorkflowType = 'Waiter'", "terminate", reason="cleanup", job_id="t1"
    )
    assert again["started"] is False
    await client.start_batch("WorkflowType = 'Waiter'", "terminate", reason="again", job_id="t2")
    d2 = await finished(client, "t2")
    assert (d2["done"], d2["skipped"]) == (0, 30)
    jobs = {j["job_id"]: j for j in await client.list_batches()}
    assert jobs["t1"]["state"] == "completed"
    # the operation as describe gives it; the one line of the table beside it
    assert jobs["t1"]["operation"] == d["operation"] == {"kind": "terminate", "params": {}}
    assert jobs["t1"]["summary"] == "terminate"
    # the jobs are system workflows: not in a plain list, not acted on by a batch
    assert [
        e.workflow_id async for e in client.list_workflows("ExecutionStatus = 'Completed'")
    ] == []


async def test_batch_signal_and_stop(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Waiter]):
        for i in range(10):
            await client.start_workflow(Waiter, id=f"s-{i}", task_queue=QUEUE)
        payload = await client.encode(["hello"])
        await client.start_batch(
            "WorkflowType = 'Waiter'",
            "signal",
            reason="nudge",
            params={"signal_name": "note", "input": payload},
            job_id="sig",
        )
        d = await finished(client, "sig")
        assert (d["state"], d["done"]) == ("completed", 10)
        for i in range(10):
            await client.get_workflow_handle(f"s-{i}").signal("note", "stop")
            assert await client.get_workflow_handle(f"s-{i}").result(timeout=20) == [
                "hello",
                "stop",
            ]
    for i in range(40):
        await client.start_workflow(Waiter, id=f"slow-{i}", task_queue=QUEUE)
    await client.start_batch(
        "WorkflowType = 'Waiter'", "terminate", reason="x", rps=2, job_id="slow"
    )

    async def under_way() -> bool:
        query = "WorkflowId STARTS_WITH 'slow-' AND ExecutionStatus = 'Terminated'"
        return (await client.count_workflows(query)).count >= 1

    # a stop that arrives before the first page ends the job with nothing done;
    # this one arrives while the first page runs
    await eventually(under_way, timeout=30, what="the first page under way")
    stopped = await client.stop_batch("slow", "changed my mind")
    assert stopped["stop_requested"] is True
    d = await finished(client, "slow")
    assert d["state"] == "stopped" and d["stop_reason"] == "changed my mind"
    assert 0 < int(d["done"]) < 40  # it stopped after its page, not at the end
    assert await client.stop_batch("slow") == {
        "job_id": "slow",
        "stop_requested": False,
        "state": "stopped",
    }
    # the list says how each job ended, as describe does
    states = {j["job_id"]: j["state"] for j in await client.list_batches()}
    assert states == {"sig": "completed", "slow": "stopped"}
    # another job under a used id is refused, whatever the job's state; the
    # same job again is the same job
    for job_id, query, op, params in (
        ("slow", "WorkflowType = 'Other'", "terminate", {}),
        ("slow", "WorkflowType = 'Waiter'", "cancel", {}),
        ("sig", "WorkflowType = 'Waiter'", "signal", {"signal_name": "other", "input": payload}),
        ("sig", "WorkflowType = 'Waiter'", "signal", {"signal_name": "note", "input": []}),
    ):
        with pytest.raises(BatchAlreadyExistsError) as caught:
            await client.start_batch(query, op, reason="x", params=params, job_id=job_id)
        assert f"baton batch describe {job_id}" in caught.value.message
    again = await client.start_batch(
        "WorkflowType = 'Waiter'",
        "signal",
        reason="nudge",
        params={"signal_name": "note", "input": payload},
        job_id="sig",
    )
    assert again["started"] is False
    described = await client.describe_batch("sig")
    assert described["operation"]["params"]["signal_name"] == "note"
    listed = {j["job_id"]: j for j in await client.list_batches()}["sig"]
    assert listed["operation"] == described["operation"] and listed["summary"] == "signal note"


async def test_bad_batches_are_refused_and_store_nothing(client: Client, region: Region) -> None:
    with pytest.raises(InvalidQueryError):
        await client.start_batch("WorkflowType =", "terminate", reason="x")
    with pytest.raises(InvalidArgumentError):
        await client.start_batch("", "explode", reason="x")
    with pytest.raises(InvalidArgumentError):
        await client.start_batch("", "signal", reason="x", params={})
    with pytest.raises(InvalidArgumentError):
        await client.start_batch("", "reset", reason="x", params={"to": "yesterday"})
    with pytest.raises(InvalidArgumentError):
        await client.start_batch("", "terminate", reason="x", rps=0)
    with pytest.raises(InvalidArgumentError):
        await client.start_batch("", "terminate", reason="")
    for dots in (".", ".."):  # its describe URL would name the namespace's route
        with pytest.raises(InvalidArgumentError, match="not dots alone"):
            await client.start_batch("", "terminate", reason="x", job_id=dots)
    with pytest.raises(BatchNotFoundError):
        await client.describe_batch("nope")
    with pytest.raises(BatchNotFoundError):
        await client.stop_batch("nope")
    with pytest.raises(InvalidArgumentError):  # the system's workflow types are reserved
        await client.start_workflow("baton.batch", id="forged", task_queue="baton.system")
    conn = await asyncpg.connect(region.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM executions") == 0
    finally:
        await conn.close()


async def test_a_job_whose_query_stops_holding_ends_failed_and_says_why(client: Client) -> None:
    await client.add_search_attribute("Team", "Keyword")
    for i in range(12):
        await client.start_workflow(
            Waiter, id=f"team-{i:02d}", task_queue=QUEUE, search_attributes={"Team": "red"}
        )
    await client.start_batch("Team = 'red'", "terminate", reason="x", rps=2, job_id="team")

    async def first_page_under_way() -> bool:
        return (await client.count_workflows("ExecutionStatus = 'Terminated'"))["count"] >= 1

    # the first page (10 runs at 2/s) is being worked on: its list ran
    await eventually(first_page_under_way, timeout=30, what="the first terminate")
    await client.remove_search_attribute("Team")
    d = await finished(client, "team")
    assert d["state"] == "failed"
    assert "unknown search attribute 'Team'" in str(d["error"])
    assert 0 < int(d["done"]) < 12  # type: ignore[call-overload]


async def test_a_signal_job_with_encrypted_input_started_again_is_the_same_job(
    region: Region,
) -> None:
    """An encrypting client encodes the same input differently each time: the
    same job again is still the same job, and another one under its id is not."""
    codec = AesGcmCodec(keys={"k1": generate_key()}, active_key_id="k1")
    async with await Client.connect(region.url, data_converter=DataConverter(codec=codec)) as enc:
        await enc.create_namespace("default")
        first, second = await enc.encode(["hello"]), await enc.encode(["hello"])
        assert first != second  # a fresh nonce each time
        query = "WorkflowType = 'Nothing'"
        started = await enc.start_batch(
            query,
            "signal",
            reason="nudge",
            params={"signal_name": "note", "input": first},
            job_id="enc",
        )
        assert started["started"] is True
        again = await enc.start_batch(
            query,
            "signal",
            reason="nudge",
            params={"signal_name": "note", "input": second},
            job_id="enc",
        )
        assert again["started"] is False and again["run_id"] == started["run_id"]
        with pytest.raises(BatchAlreadyExistsError):
            await enc.start_batch(
                query,
                "signal",
                reason="nudge",
                params={"signal_name": "other", "input": second},
                job_id="enc",
            )


async def test_the_rate_holds_across_pages(client: Client) -> None:
    """At 0.25 runs a second a page holds two runs; the pages must not follow
    each other at once, or a job runs at twice its rate (and at no limit at
    all once its pages hold one run)."""
    for i in range(3):
        await client.start_workflow(Waiter, id=f"paced-{i}", task_queue=QUEUE)
    await client.start_batch(
        "WorkflowType = 'Waiter'", "terminate", reason="paced", rps=0.25, job_id="paced"
    )
    d = await finished(client, "paced")
    assert (d["state"], d["done"], d["pages"]) == ("completed", 3, 2)
    times = []
    for i in range(3):
        events = await client.get_workflow_handle(f"paced-{i}").history()
        ends = [e for e in events if e["event_type"] == "WorkflowExecutionTerminated"]
        times.append(datetime.fromisoformat(ends[0]["event_time"]))
    times.sort()
    # three runs at 0.25 a second: the last one 8 s after the first, at least
    assert (times[-1] - times[0]).total_seconds() >= 7.5


async def test_a_stop_cuts_short_the_wait_between_slow_pages(client: Client) -> None:
    """At the lowest rate a page holds one run and the next page waits 100 s:
    a stop must end the job now, not once that wait is over."""
    for i in range(3):
        await client.start_workflow(Waiter, id=f"lazy-{i}", task_queue=QUEUE)
    await client.start_batch(
        "WorkflowType = 'Waiter'", "terminate", reason="slow", rps=0.01, job_id="lazy"
    )

    async def first_run_done() -> bool:
        return (await client.count_workflows("ExecutionStatus = 'Terminated'")).count >= 1

    await eventually(first_run_done, timeout=30, what="the first page's run terminated")
    assert (await client.stop_batch("lazy", "enough"))["stop_requested"] is True

    async def stopped() -> dict[str, object] | None:
        d = await client.describe_batch("lazy")
        return d if d["state"] != "running" else None

    # well under the 100 s the next page would have waited
    d = await eventually(stopped, timeout=45, interval=0.3, what="batch lazy stopped")
    assert (d["state"], d["done"], d["stop_reason"]) == ("stopped", 1, "enough")
    assert (await client.count_workflows("ExecutionStatus = 'Running'")).count == 2


async def test_a_batch_walks_newest_first_so_its_own_new_runs_are_not_walked_again(
    client: Client,
) -> None:
    """A reset's new run starts after the job did: oldest first it would sort
    after the job's cursor, be reset again, and so on without end."""
    for i in range(2):
        await client.start_workflow(Waiter, id=f"order-{i}", task_queue=QUEUE)
    for query in (
        "WorkflowType = 'Waiter' ORDER BY StartTime ASC",
        "WorkflowType = 'Waiter' order by WorkflowId",
    ):
        with pytest.raises(InvalidQueryError) as caught:
            await client.start_batch(
                query, "reset", reason="x", params={"to": "first-workflow-task"}, rps=100
            )
        assert "newest first" in caught.value.message
        assert caught.value.details["position"] == query.lower().index("by ") + 3
    assert await client.list_batches() == []  # nothing started
    # the order a job walks in anyway may be said
    await client.start_batch(
        "WorkflowType = 'Waiter' ORDER BY StartTime DESC", "terminate", reason="x", job_id="desc"
    )
    d = await finished(client, "desc")
    assert (d["state"], d["done"]) == ("completed", 2)


async def test_stop_leaves_a_workflow_of_the_users_under_a_jobs_id_alone(client: Client) -> None:
    """`batch stop foo` is about job foo: the user's own workflow `batch/foo` is
    no job, so it is not signalled, as `batch describe foo` does not show it."""
    await client.start_workflow(Waiter, id="batch/foo", task_queue=QUEUE)
    with pytest.raises(BatchNotFoundError):
        await client.describe_batch("foo")
    with pytest.raises(BatchNotFoundError):
        await client.stop_batch("foo", "oops")
    events = await client.get_workflow_handle("batch/foo").history()
    assert [e for e in events if e["event_type"] == "WorkflowExecutionSignaled"] == []


async def test_a_job_that_continued_as_new_is_listed_once_as_it_ended(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every run of a job's chain is a row; only its last one says how the job
    stands, on whichever page the earlier ones fall."""
    monkeypatch.setattr(batch_job, "PAGES_PER_RUN", 1)
    for i in range(3):
        await client.start_workflow(Waiter, id=f"chain-{i}", task_queue=QUEUE)
    # two runs a page at 0.4/s: two pages, one run of the job each
    await client.start_batch(
        "WorkflowType = 'Waiter'", "terminate", reason="x", rps=0.4, job_id="c"
    )
    d = await finished(client, "c")
    assert (d["state"], d["done"]) == ("completed", 3)
    runs = await client.call(
        "GET",
        ns_path("default", "/workflow-count"),
        params={"query": "WorkflowId = 'batch/c'", "include_system": "true"},
    )
    assert runs["count"] == 2
    listed, token = [], None
    while True:
        page = await client.call(
            "GET",
            ns_path("default", "/batches"),
            params={"page_size": 1, **({"page_token": token} if token else {})},
        )
        listed += [(j["job_id"], j["state"]) for j in page["jobs"]]
        if not (token := page["next_page_token"]):
            break
    assert listed == [("c", "completed")]
    [job] = await client.list_batches()
    assert (job["job_id"], job["state"]) == ("c", "completed")
    assert job["operation"] == d["operation"]
    # it started when its first run did, as describe says
    assert job["start_time"] == d["start_time"]


async def test_list_batches_reads_every_page(client: Client) -> None:
    """The list's route answers a page at a time; the SDK's list (and so `baton
    batch list`) goes on to the last page, not stopping at the first 100."""
    for i in range(101):
        await client.start_batch(
            "WorkflowType = 'Nothing'", "terminate", reason="x", job_id=f"j{i}"
        )
    listed = [j["job_id"] for j in await client.list_batches()]
    assert sorted(listed) == sorted(f"j{i}" for i in range(101))


async def test_an_unpause_job_takes_to_current_only_as_a_boolean(client: Client) -> None:
    """to_current "false" is not true: it is refused, not read as bool("false")."""
    for value in ("false", 0, [True]):
        with pytest.raises(InvalidArgumentError, match="to_current"):
            await client.start_batch("", "unpause", reason="x", params={"to_current": value})
    assert await client.list_batches() == []
    await client.start_batch("", "unpause", reason="x", params={"to_current": False}, job_id="u")
    assert (await client.describe_batch("u"))["operation"]["params"]["to_current"] is False


async def test_a_parameter_the_operation_does_not_take_is_refused_not_ignored(
    client: Client,
) -> None:
    """A typo of an optional parameter must not run the job with its default
    (here: a reset that would re-apply signals the caller meant to drop)."""
    with pytest.raises(InvalidArgumentError, match=r"'re_apply'.*it takes reapply, to") as exc:
        await client.start_batch("", "reset", reason="x", params={"re_apply": "none"})
    assert exc.value.details["unknown"] == ["re_apply"]
    with pytest.raises(InvalidArgumentError, match="it takes no parameters"):
        await client.start_batch("", "terminate", reason="x", params={"force": True})
    assert await client.list_batches() == []
    await client.start_batch("", "reset", reason="x", params={"reapply": "none"}, job_id="r")
    assert (await client.describe_batch("r"))["operation"]["params"]["reapply"] == "none"


async def test_a_start_retried_after_its_answer_was_lost_starts_one_job(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transport retries a start whose answer it did not get: without a job
    id the retry must find the job the first attempt started, not start a
    second one that signals every run again."""
    for i in range(3):
        await client.start_workflow(Waiter, id=f"once-{i}", task_queue=QUEUE)
    real = client.call

    async def answer_lost_once(method: str, path: str, body: Any = None, **kw: Any) -> Any:
        if method == "POST" and path.endswith("/batches"):
            await real(method, path, body, **kw)  # stored; its answer never arrives
        return await real(method, path, body, **kw)

    monkeypatch.setattr(client, "call", answer_lost_once)
    payload = await client.encode(["hello"])
    started = await client.start_batch(
        "WorkflowType = 'Waiter'",
        "signal",
        reason="x",
        params={"signal_name": "note", "input": payload},
    )
    monkeypatch.undo()
    # the retry found the job this call started: it says so (started)
    assert started["started"] is True
    assert [j["job_id"] for j in await client.list_batches()] == [started["job_id"]]
    assert (await finished(client, started["job_id"]))["done"] == 3
    for i in range(3):
        events = await client.get_workflow_handle(f"once-{i}").history()
        assert [e["event_type"] for e in events].count("WorkflowExecutionSignaled") == 1


async def test_a_job_id_a_workflow_of_the_users_holds_is_refused_as_taken(client: Client) -> None:
    """The job's workflow id is batch/<job id>: when a workflow of the user's
    holds it the refusal is about the job id, not a workflow the user did not
    name, and it says what to do."""
    await client.start_workflow(Waiter, id="batch/taken", task_queue=QUEUE)
    with pytest.raises(BatchAlreadyExistsError) as caught:
        await client.start_batch("", "terminate", reason="x", job_id="taken")
    assert "another --job-id" in caught.value.message
    assert await client.list_batches() == []
    described = await client.get_workflow_handle("batch/taken").describe()
    assert described["execution"]["status"] == "running"


async def test_a_job_started_again_under_its_id_with_another_request_id_is_the_same_job(
    client: Client,
) -> None:
    """The job id names the job, whatever request id each start carries (the
    CLI sends none, another client its own): running or ended, the same job
    again is started: false, not a workflow's WORKFLOW_ALREADY_STARTED."""
    await client.start_workflow(Waiter, id="again-0", task_queue=QUEUE)
    query = "WorkflowType = 'Waiter'"
    first = await client.start_batch(
        query, "terminate", reason="x", rps=0.01, job_id="again", request_id="first"
    )
    for request_id in ("second", None):  # while it runs
        again = await client.start_batch(
            query, "terminate", reason="x", rps=0.01, job_id="again", request_id=request_id
        )
        assert again == {"job_id": "again", "run_id": first["run_id"], "started": False}
    with pytest.raises(BatchAlreadyExistsError):
        await client.start_batch(query, "cancel", reason="x", job_id="again", request_id="third")
    d = await finished(client, "again")
    assert (d["state"], d["done"]) == ("completed", 1)
    again = await client.start_batch(query, "terminate", reason="x", job_id="again", request_id="4")
    assert again == {"job_id": "again", "run_id": first["run_id"], "started": False}
    assert [j["job_id"] for j in await client.list_batches()] == ["again"]


async def test_a_signal_job_whose_input_no_signal_would_take_is_refused_and_stores_nothing(
    client: Client, region: Region
) -> None:
    """The input is checked as a signal's is when the job starts, not on each run it reaches."""
    await client.start_workflow(Waiter, id="target", task_queue=QUEUE)
    over = "AAAA" * (region.config.max_payload_bytes // 3 + 4)
    for payload, error in [
        ({"metadata": {"encoding": "json/plain"}, "data": "!!"}, InvalidArgumentError),  # no base64
        ({"encoding": "json/plain", "value": "hi"}, InvalidArgumentError),  # no payload at all
        ({"metadata": {"encoding": 1}, "data": ""}, InvalidArgumentError),  # metadata of a number
        ({"metadata": {"encoding": "json/plain"}, "data": over}, PayloadTooLargeError),
    ]:
        params = {"signal_name": "note", "input": [payload]}
        with pytest.raises(error):
            await client.start_batch("", "signal", reason="x", params=params, job_id="bad")
    assert await client.list_batches() == []
    # an input the client encoded is taken as it is
    params = {"signal_name": "note", "input": await client.encode(["hi"])}
    await client.start_batch("", "signal", reason="x", params=params, job_id="good")
    d = await finished(client, "good")
    assert (d["state"], d["done"], d["failed"]) == ("completed", 1, 0)
    assert d["operation"]["params"]["input"] == params["input"]


async def test_a_rate_that_is_no_number_is_refused_naming_it(client: Client) -> None:
    """NaN passes every range check: it must be refused as what it is, not sent."""
    for rps in (float("nan"), float("inf"), True, "5"):
        with pytest.raises(InvalidArgumentError, match="rps must be a number"):
            await client.start_batch("", "terminate", reason="x", rps=rps)  # type: ignore[arg-type]
    # a string is no number, "NaN" neither (it was read as NaN, then refused as not finite)
    body = {"query": "", "operation": {"kind": "terminate"}, "reason": "x", "rps": "NaN"}
    with pytest.raises(InvalidArgumentError, match="rps: Input should be a valid number"):
        await client.call("POST", ns_path(client.namespace, "/batches"), body)
    assert await client.list_batches() == []


async def test_a_job_says_how_many_runs_it_matched_as_it_started(client: Client) -> None:
    """As Temporal's total_operation_count: progress is done + skipped + failed of it."""
    for i in range(7):
        await client.start_workflow(Waiter, id=f"total-{i}", task_queue=QUEUE)
    await client.get_workflow_handle("total-0").terminate("closed before the job")
    query = "WorkflowId STARTS_WITH 'total-'"
    await client.start_batch(query, "terminate", reason="x", rps=1000, job_id="counted")
    d = await finished(client, "counted")
    assert (d["total"], d["done"], d["skipped"], d["failed"]) == (7, 6, 1, 0)
    await client.start_batch("WorkflowId = 'none'", "terminate", reason="x", job_id="empty")
    assert (await finished(client, "empty"))["total"] == 0
