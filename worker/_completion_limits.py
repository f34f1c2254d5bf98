"""A workflow task's completion over the server's limits: a typed end, not retries.

The server refuses a completion holding a payload over its
``max_payload_bytes``, or a body over its request limit, and records nothing.
The same code issues the same commands on every retry, so a retried task
would be refused for ever and the run would never move again. The worker
answers in its place (see :mod:`worker._limits`):

* an outcome over the limit (the run's result, an update's result or
  rejection) becomes a ``PayloadTooLarge`` failure of that outcome;
* a command that starts work (an activity's input, continue-as-new's input or
  memo, a marker's details), or all commands together past the body limit,
  fail the run with a ``PayloadTooLarge`` failure naming what was too big, its
  size and the limit, in place of the task's commands: nothing of them is
  recorded. A worker set to pause runs on repeated failures
  (``pause_after_failed_workflow_tasks``) fails the task and pauses the run
  at once instead, so someone can look before it moves on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from worker._activity_runner import ActivityRunner
from worker._limits import body_too_large, command_over, commands_too_large, outcome_over, too_large
from worker.errors import ApplicationError, PayloadTooLargeError
from worker.wire import CommandType

log = logging.getLogger("baton.worker")


class CompletionLimits(ActivityRunner):
    """Sends workflow task completions, ending a run whose commands cannot fit."""

    _pause_after: Callable[[str], int | None]

    async def _fail_workflow_task(
        self, task: dict[str, Any], exc: BaseException, *, pause: bool = False
    ) -> None:
        raise NotImplementedError

    async def _complete_workflow_task(
        self, body: dict[str, Any], task: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Send a workflow task's completion: its answer, or None if its commands
        were over the server's limits and the run failed (or paused) for it."""
        try:
            res: dict[str, Any] = await self._call_handing_back("/workflow-tasks/complete", body)
            return res
        except PayloadTooLargeError as exc:
            refused = exc
        if await self._fail_outcomes_over_limit(body["commands"], refused):
            # The refusal recorded nothing: the same task completes with the failures.
            try:
                res = await self._call_handing_back("/workflow-tasks/complete", body)
                return res
            except PayloadTooLargeError as exc:
                refused = exc
        error = await self._commands_over_limit(body, refused)
        if error is None:
            raise refused
        log.warning(
            "the workflow task of %s (%s) cannot be completed: %s",
            task["workflow_id"],
            task["workflow_type"],
            error.message,
        )
        if self._pause_after(task["workflow_type"]) is not None:
            # Retries would fail alike: pause now, the failure in the reason.
            await self._fail_workflow_task(task, error, pause=True)
            return None
        failure = await self._wire_failure(error)
        body["commands"] = [*_answered_updates(body["commands"], failure)]
        body["commands"].append(
            {"type": CommandType.FAIL_WORKFLOW.value, "attributes": {"failure": failure}}
        )
        await self._call_handing_back("/workflow-tasks/complete", body)
        return None

    async def _commands_over_limit(
        self, body: dict[str, Any], exc: PayloadTooLargeError
    ) -> ApplicationError | None:
        """The failure that ends the run whose completion ``body`` was refused
        with ``exc``: a command's payload over the payload limit, or the body
        over the body limit; None if neither is (the refusal was something else)."""
        limit = await self._payload_limit(exc)
        if limit is None:
            return None
        commands = body["commands"]
        over = command_over(commands, limit)
        if over is not None:
            return commands_too_large(*over, limit)
        body_limit = exc.details.get("limit")
        if isinstance(body_limit, int) and not isinstance(body_limit, bool) and body_limit > limit:
            return body_too_large(len(commands), len(orjson.dumps(body)), body_limit)
        return None

    async def _fail_outcomes_over_limit(
        self, commands: list[dict[str, Any]], exc: PayloadTooLargeError
    ) -> bool:
        """Put failures in place of the outcomes in ``commands`` (wire JSON, encoded)
        that are over the payload limit; False if none is."""
        limit = await self._payload_limit(exc)
        if limit is None:
            return False
        changed = False
        for i, command in enumerate(commands):
            over = outcome_over(command, limit)
            if over is None:
                continue
            changed = True
            error = too_large(*over, limit)
            log.warning("%s; reporting a failure instead", error.message)
            failure = await self._wire_failure(error)
            if command["type"] in (CommandType.COMPLETE_UPDATE, CommandType.REJECT_UPDATE):
                command["attributes"] = {
                    "update_id": command["attributes"].get("update_id"),
                    "result": None,
                    "failure": failure,
                }
            else:
                commands[i] = {
                    "type": CommandType.FAIL_WORKFLOW.value,
                    "attributes": {"failure": failure},
                }
        return changed


def _answered_updates(
    commands: list[dict[str, Any]], failure: dict[str, Any]
) -> list[dict[str, Any]]:
    """The task's updates, each rejected: those its code accepted with ``failure``.

    The server closes no run while an update it delivered stands unanswered
    (it would retry the task at once, for ever); a rejection records no event,
    so the run's history holds only its failure, as replay expects.
    """
    answered = []
    for command in commands:
        kind = command.get("type")
        if kind not in (CommandType.ACCEPT_UPDATE, CommandType.REJECT_UPDATE):
            continue
        attrs = command.get("attributes") or {}
        rejected = kind == CommandType.REJECT_UPDATE
        answered.append(
            {
                "type": CommandType.REJECT_UPDATE.value,
                "attributes": {
                    "update_id": attrs.get("update_id"),
                    "failure": attrs.get("failure") if rejected else failure,
                },
            }
        )
    return answered
