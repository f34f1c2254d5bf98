"""An activity's ``ApplicationError(next_retry_delay=...)`` sets the pause before
its next attempt in place of the retry policy's backoff, as in Temporal (a
rate-limited API that says when to come back); the policy's attempts still count."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest

from worker import ActivityError, ApplicationError, Client, RetryPolicy, Worker, activity, workflow

pytestmark = pytest.mark.integration
QUEUE = "next-retry-delay"

#: When each attempt of each workflow id started (one worker process).
STARTS: dict[str, list[float]] = {}


@activity.defn
async def rate_limited(succeed_at: int) -> str:
    info = activity.info()
    STARTS.setdefault(info.workflow_id, []).append(time.monotonic())
    if info.attempt < succeed_at:
        raise ApplicationError(
            "429: come back shortly",
            type="RateLimited",
            next_retry_delay=timedelta(milliseconds=300),
        )
    return f"through at attempt {info.attempt}"


@workflow.defn
class Call:
    @workflow.run
    async def run(self, succeed_at: int) -> str:
        try:
            result: str = await workflow.execute_activity(
                rate_limited,
                succeed_at,
                start_to_close_timeout=timedelta(seconds=10),
                # the policy alone would wait a minute before the second attempt
                retry_policy=RetryPolicy(initial_interval=timedelta(minutes=1), maximum_attempts=3),
            )
        except ActivityError as err:
            cause = err.__cause__
            assert isinstance(cause, ApplicationError)
            return f"{err.retry_state} after {cause.type}, delay {cause.next_retry_delay}"
        return result


async def test_an_attempt_sets_the_delay_before_the_next(client: Client) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Call], activities=[rate_limited]):
        assert (
            await client.execute_workflow(Call, 3, id="through", task_queue=QUEUE)
            == "through at attempt 3"
        )
        assert await client.execute_workflow(Call, 9, id="limited", task_queue=QUEUE) == (
            "maximum_attempts_reached after RateLimited, delay 0:00:00.300000"
        )
    for starts in STARTS.values():
        gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
        assert len(gaps) == 2
        assert all(0.25 < gap < 5 for gap in gaps), gaps


def test_a_delay_that_is_no_duration_is_refused_where_it_is_raised() -> None:
    with pytest.raises(ValueError, match="next_retry_delay"):
        ApplicationError("x", next_retry_delay=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="next_retry_delay"):
        ApplicationError("x", next_retry_delay=5)  # type: ignore[arg-type]
