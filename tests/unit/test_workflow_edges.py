"""Workflow code at the edges of waiting and cancelling: a zero wait_condition
timeout, and a cancel that comes before the run method's first line."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.test_workflow_instance import CancelCatcher, Sim, dec, types
from worker import workflow
from worker.wire import CommandType


@workflow.defn(name="ZeroWait")
class ZeroWait:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> list[str]:
        outcome = []
        for timeout in (0, timedelta(0)):
            try:
                await workflow.wait_condition(lambda: self.go, timeout=timeout)
                outcome.append("met")
            except TimeoutError:
                outcome.append("timed out")
            self.go = True
        return outcome


def test_a_zero_wait_condition_timeout_checks_once_without_a_timer() -> None:
    # A deadline's remainder can be zero; sleep(0) is fine, and so is this:
    # it must not fail the workflow task (and so retry it) for ever.
    sim = Sim(ZeroWait)
    [command] = sim.run_task()
    assert command.type == CommandType.COMPLETE_WORKFLOW
    assert dec(command.attributes["result"]) == ["timed out", "met"]
    sim.replay()


def test_a_cancel_before_the_first_task_still_lets_the_run_clean_up() -> None:
    # The cancel request is in the first task's own events: the run method
    # takes its first step into its try block before the cancellation lands
    # (as in Temporal), instead of being cancelled before its first line.
    sim = Sim(CancelCatcher)
    sim.request_cancel()
    assert types(sim.run_task()) == [
        CommandType.SCHEDULE_ACTIVITY,
        CommandType.RECORD_MARKER,
        CommandType.REQUEST_CANCEL_ACTIVITY,
        CommandType.SCHEDULE_ACTIVITY,
    ]
    sim.complete_activity("2", 2)
    assert types(sim.run_task()) == [CommandType.CANCEL_WORKFLOW]
    sim.replay()
