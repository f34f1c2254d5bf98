"""Worker versioning's rules, with no database: the pure layer routing builds on.

A version is (deployment, build id). A deployment has a current version and
optionally a ramping one with a percentage; ``None`` as a build id means
"unversioned workers". Which of the two a workflow id gets under a ramp is a
pure function of the id (:func:`ramp_bucket`), the same in every region and on
every retry. A workflow is pinned (its tasks go to one version until it
closes, or an override says otherwise) or auto-upgrade (each task goes to the
deployment's target version for its id). Overrides pin, unpin, or move just
the next task. A version that is neither current nor ramping is draining while
pinned workflows are open on it and drained once none is.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from enum import StrEnum

from worker.wire import VERSION_NAME_PATTERN

_NAME = re.compile(VERSION_NAME_PATTERN)


class VersioningError(ValueError):
    """A versioning value is not valid; the message says what to use instead."""


@dataclass(frozen=True, order=True)
class Version:
    """A worker deployment and one of its builds."""

    deployment: str
    build_id: str

    def __post_init__(self) -> None:
        for what, value in (("deployment", self.deployment), ("build id", self.build_id)):
            # fullmatch: `$` alone lets a trailing line break through
            if not _NAME.fullmatch(value) or ":" in value:
                raise VersioningError(
                    f"{what} {value!r} is not valid: use 1-255 letters, digits, '_', '.', '-', "
                    "starting with a letter or digit"
                )

    def __str__(self) -> str:
        return f"{self.deployment}:{self.build_id}"

    @classmethod
    def parse(cls, text: str) -> Version:
        """``payments:41`` as a version."""
        deployment, sep, build = text.partition(":")
        if not sep:
            raise VersioningError(f"{text!r} is not DEPLOYMENT:BUILD_ID (e.g. payments:41)")
        return cls(deployment, build)


class Behavior(StrEnum):
    PINNED = "pinned"
    AUTO_UPGRADE = "auto-upgrade"


class OverrideKind(StrEnum):
    PINNED = "pinned"
    AUTO_UPGRADE = "auto-upgrade"
    #: The next workflow task runs on the given version, then the run's own behaviour.
    ONE_TIME = "one-time"


@dataclass(frozen=True)
class Override:
    kind: OverrideKind
    #: The build of a pinned or one-time override (None: unversioned workers).
    build_id: str | None = None


def ramp_bucket(workflow_id: str) -> float:
    """Where ``workflow_id`` falls in [0, 100): a stable hash, the same everywhere."""
    digest = hashlib.sha256(workflow_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def check_percent(percent: float) -> float:
    if not 0 <= percent <= 100:
        raise VersioningError(f"a ramp is 0-100 percent, not {percent}")
    return float(percent)


@dataclass(frozen=True)
class DeploymentState:
    """A deployment's routing: current and ramping builds (None: unversioned)."""

    current: str | None = None
    ramping: str | None = None
    #: 0 when nothing ramps, or while a ramping build is held back with no ids.
    ramping_percent: float = 0.0
    #: Bumped by every change; a writer that names an older one is refused.
    revision: int = 0

    def target(self, workflow_id: str) -> str | None:
        """The build new work of ``workflow_id`` goes to."""
        if self.ramping_percent > 0 and ramp_bucket(workflow_id) < self.ramping_percent:
            return self.ramping
        return self.current

    def set_current(self, build_id: str | None, *, expect_revision: int | None) -> DeploymentState:
        """The state after making ``build_id`` current (a ramp of that build ends).

        Already current: this state, unchanged (see :meth:`set_ramping`).
        """
        if build_id == self.current:
            return self
        self._check_revision(expect_revision)
        ramping, percent = self.ramping, self.ramping_percent
        if ramping == build_id:
            ramping, percent = None, 0.0
        return replace(
            self,
            current=build_id,
            ramping=ramping,
            ramping_percent=percent,
            revision=self.revision + 1,
        )

    def set_ramping(
        self, build_id: str | None, percent: float, *, expect_revision: int | None
    ) -> DeploymentState:
        """The state after ramping ``build_id`` to ``percent``.

        A build at 0 percent stays the ramping version with no ids (a ramp held
        back, as Temporal keeps it); ``build_id`` None at 0 percent ends the ramp.
        A change already in place returns this state, unchanged and whatever
        ``expect_revision`` says: a repeated step (a retry whose answer was
        lost, a pipeline run again) overwrites nothing, so it changes nothing.
        """
        percent = check_percent(percent)
        ends = percent == 0 and build_id is None
        if (self.ramping, self.ramping_percent) == ((None, 0.0) if ends else (build_id, percent)):
            return self
        self._check_revision(expect_revision)
        if ends:
            return replace(self, ramping=None, ramping_percent=0.0, revision=self.revision + 1)
        if build_id == self.current:
            raise VersioningError(
                f"{build_id or 'unversioned'} is the current version and cannot also ramp: "
                "ramp another build, or end the ramp by giving no build with percent 0"
            )
        return replace(self, ramping=build_id, ramping_percent=percent, revision=self.revision + 1)

    def _check_revision(self, expect: int | None) -> None:
        if expect is not None and expect != self.revision:
            raise RevisionMismatch(
                f"the deployment is at revision {self.revision}, not {expect}: another change "
                "came first; read it and decide again"
            )


class RevisionMismatch(VersioningError):
    """``--expect-revision`` named a revision the deployment has moved past."""


def resolve_behavior(
    *,
    start_override: Behavior | None,
    type_behavior: Behavior | None,
    worker_default: Behavior | None,
    versioned: bool,
) -> Behavior | None:
    """A run's behaviour: the start's, else the workflow type's, else the worker's default.

    A versioned worker must be able to say one for every type it registers.
    """
    for b in (start_override, type_behavior, worker_default):
        if b is not None:
            return b
    if versioned:
        raise VersioningError(
            "a versioned worker needs a behaviour for every workflow type: give the type one "
            "(pinned or auto-upgrade) or the worker a default"
        )
    return None


@dataclass(frozen=True)
class RunVersioning:
    """What a run carries: its behaviour, the build it is pinned to, an override."""

    behavior: Behavior | None
    pinned_build: str | None = None
    override: Override | None = None


def next_task_build(run: RunVersioning, state: DeploymentState, workflow_id: str) -> str | None:
    """The build the run's next workflow task is dispatched to."""
    o = run.override
    if o is not None:
        if o.kind in (OverrideKind.PINNED, OverrideKind.ONE_TIME):
            return o.build_id
        return state.target(workflow_id)
    if run.behavior == Behavior.PINNED and run.pinned_build is not None:
        return run.pinned_build
    return state.target(workflow_id)


def after_task(run: RunVersioning, ran_on: str | None) -> RunVersioning:
    """The run after a workflow task completed on ``ran_on``.

    A one-time override is used up; a pinned run without a pin is pinned where
    its first task ran.
    """
    override = None if run.override and run.override.kind == OverrideKind.ONE_TIME else run.override
    pinned = run.pinned_build
    if run.behavior == Behavior.PINNED and pinned is None:
        pinned = ran_on
    return RunVersioning(run.behavior, pinned, override)


def continued_run(
    run: RunVersioning, *, requested: Behavior | None, queue_in_version: bool
) -> RunVersioning:
    """What a continue-as-new passes to the new run.

    ``queue_in_version``: the new run's task queue is polled by the build the
    run is held on (its pinned override's, else its pin).

    An operator's pinned override carries over when the new task queue is in
    its build, whatever the code asks (the loop guard keeps such a run from
    continuing-as-new over and over). Asking for auto-upgrade sends the new
    run's first task to the target version, after which the type's behaviour
    applies (a pinned type pins it there). A pinned run stays on its build
    when the new task queue is served by it; auto-upgrade passes nothing on.
    Neither a pin nor an override carries over to a task queue the build does
    not poll (as in Temporal): the new run's tasks would wait there for ever,
    so it routes as a new run of that queue does.
    """
    if run.override is not None and run.override.kind == OverrideKind.PINNED:
        if queue_in_version:
            return RunVersioning(run.behavior, run.pinned_build, run.override)
        run = RunVersioning(run.behavior)
    if requested == Behavior.AUTO_UPGRADE:
        return RunVersioning(None)
    if run.behavior == Behavior.PINNED and queue_in_version:
        return RunVersioning(Behavior.PINNED, run.pinned_build)
    return RunVersioning(requested or run.behavior)


class VersionStatus(StrEnum):
    INACTIVE = "inactive"
    CURRENT = "current"
    RAMPING = "ramping"
    DRAINING = "draining"
    DRAINED = "drained"


def version_status(
    build_id: str, state: DeploymentState, *, open_pinned: int, was_routed_to: bool
) -> VersionStatus:
    """A version's status from the deployment's routing and its open pinned runs."""
    if state.current == build_id:
        return VersionStatus.CURRENT
    if state.ramping == build_id:
        return VersionStatus.RAMPING
    if open_pinned > 0:
        return VersionStatus.DRAINING
    return VersionStatus.DRAINED if was_routed_to else VersionStatus.INACTIVE


def upgrade_allowed(*, upgrades_in_a_row: int, tasks_since_start: int, limit: int = 3) -> bool:
    """The continue-as-new loop guard.

    ``target_version_changed`` offers an upgrade only to a run that has done
    some work (``tasks_since_start`` workflow tasks completed: at least its
    first, so from its second task on, the one a signal or a result brings),
    and not once more after ``limit`` upgrade continue-as-news in a row that
    each did little else.
    """
    return tasks_since_start >= 1 and upgrades_in_a_row < limit
