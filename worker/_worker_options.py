"""The checks of a Worker's options, made when it is built.

An option the server would refuse on every poll or completion (a task queue
name, a build id) would leave the worker polling in a loop of errors with
nothing to run: each is refused here with a ``ValueError`` that says what it
may be.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping

from worker.wire import VERSION_NAME_PATTERN
from worker.wire.common import TASK_QUEUE_MAX_CHARS

__all__ = ["at_least_one", "check_task_queue", "pause_limits", "version"]


def check_task_queue(task_queue: object) -> None:
    # The server refuses every poll of any other; the worker would poll on
    # forever, warning, with nothing to run.
    if not isinstance(task_queue, str) or not 1 <= len(task_queue) <= TASK_QUEUE_MAX_CHARS:
        raise ValueError(
            f"task_queue must be a string of 1 to {TASK_QUEUE_MAX_CHARS} characters, "
            f"not {task_queue!r:.80}"
        )


def at_least_one(**counts: int) -> None:
    for name, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, not {n!r}")


def pause_limits(
    value: int | Mapping[str, int] | None, workflow_types: Collection[str] = ()
) -> Callable[[str], int | None]:
    """The limit of failed workflow tasks in a row of each workflow type (None: off).

    Anything but a count or a mapping of the worker's ``workflow_types`` to
    counts is refused: a count given as ``"3"`` or ``2.5``, or a misspelt
    type, would turn the pause off without a word.
    """
    if value is None:
        return lambda _type: None
    if not isinstance(value, Mapping | int):
        raise ValueError(
            "pause_after_failed_workflow_tasks is a count or {workflow type: count}, "
            f"not {value!r:.80}"
        )
    limits = value if isinstance(value, Mapping) else {}
    for n in [value] if isinstance(value, int) else limits.values():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"pause_after_failed_workflow_tasks must be >= 1, not {n!r}")
    unknown = sorted(map(repr, set(limits) - set(workflow_types)))
    # (a worker with a dynamic workflow runs every type it is sent)
    if unknown and not getattr(workflow_types, "has_dynamic", False):
        raise ValueError(
            f"pause_after_failed_workflow_tasks names {', '.join(unknown)}, no workflow type "
            f"of this worker: its types are {', '.join(sorted(workflow_types)) or 'none'}"
        )
    if isinstance(value, int):
        return lambda _type: value
    return lambda workflow_type: limits.get(workflow_type)


def version(deployment: tuple[str, str] | None) -> tuple[str | None, str | None]:
    if deployment is None:
        return None, None
    if (
        not isinstance(deployment, tuple)
        or len(deployment) != 2
        or not all(isinstance(x, str) and x for x in deployment)
    ):
        raise ValueError(
            f"deployment must be (deployment name, build id), e.g. ('payments', '41'), "
            f"not {deployment!r}"
        )
    # The server refuses every poll of a name it cannot route: refuse to start
    # instead of polling in a loop of errors.
    for what, value in zip(("deployment name", "build id"), deployment, strict=True):
        # fullmatch: `$` alone lets a trailing line break through
        if not re.fullmatch(VERSION_NAME_PATTERN, value):
            raise ValueError(
                f"{what} {value!r} is not valid: use 1-255 letters, digits, '_', '.', '-', "
                "starting with a letter or digit"
            )
    return deployment[0], deployment[1]
