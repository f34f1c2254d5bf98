"""Durable timers of a workflow run: StartTimer and CancelTimer commands.

A mixin of :class:`worker._workflow_runtime.WorkflowRuntime`, which holds the
state named here and issues the commands.
"""

from __future__ import annotations

from collections.abc import Callable

from worker._workflow_loop import DurableTimer
from worker.wire import MAX_DURATION_S, Command, CommandType, HistoryEvent

#: Patch marker of runs whose timers started and cancelled in one activation
#: issue no command (as Temporal drops them): earlier runs recorded both.
DROP_UNSENT_TIMERS_PATCH = "baton.drop-unsent-timers"


class TimerCommands:
    """Starts and cancels a run's durable timers."""

    _timers: dict[str, DurableTimer]
    _timer_seq: int
    _commands: list[Command]
    activating: bool
    closed: bool
    _read_only: bool

    def check_writable(self, what: str) -> None:
        raise NotImplementedError

    def misuse(self, exc: Exception) -> Exception:
        raise NotImplementedError

    def patched(self, patch_id: str) -> bool:
        raise NotImplementedError

    def _add_command(
        self, command: Command, on_match: Callable[[HistoryEvent], None] | None = None
    ) -> None:
        raise NotImplementedError

    def start_timer(self, timer: DurableTimer, delay: float) -> None:
        self.check_writable("a timer (asyncio.sleep, wait_for, workflow.sleep)")
        if delay > MAX_DURATION_S:  # the server's bound: it would refuse every attempt
            raise self.misuse(ValueError(f"a timer may wait at most ten years, not {delay:g} s"))
        self._timer_seq += 1
        timer.timer_id = str(self._timer_seq)
        self._timers[timer.timer_id] = timer
        self._add_command(
            Command(
                type=CommandType.START_TIMER,
                attributes={"timer_id": timer.timer_id, "duration_s": delay},
            )
        )

    def cancel_timer(self, timer: DurableTimer) -> None:
        self._timers.pop(timer.timer_id, None)
        start = self._unsent_start(timer.timer_id)
        if start is not None and self.patched(DROP_UNSENT_TIMERS_PATCH):
            # Started and cancelled before the task's commands went out (a
            # wait_condition whose condition held, an asyncio.timeout() around
            # code that did not wait): as in Temporal, neither reaches history,
            # where a loop of such waits would add two events a turn.
            self._commands.remove(start)
            return
        self._add_command(
            Command(type=CommandType.CANCEL_TIMER, attributes={"timer_id": timer.timer_id})
        )

    def _unsent_start(self, timer_id: str) -> Command | None:
        """The StartTimer of ``timer_id`` among the commands of the running activation."""
        # (after the run's close no command is recorded: one already issued
        # stays as it is, or a replay, which sees no marker, would differ)
        if not self.activating or self._read_only or self.closed:
            return None
        for command in reversed(self._commands):
            if (
                command.type == CommandType.START_TIMER
                and command.attributes.get("timer_id") == timer_id
            ):
                return command
        return None
