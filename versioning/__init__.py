"""Worker versioning: deployments, build ids, pinned and auto-upgrade runs.

So far the pure rules (:mod:`versioning.rules`): version identity, the ramp's
stable hash, target versions, overrides, continue-as-new inheritance and
version status. Routing in dispatch, deployment state in the store and the
CLI build on them.
"""

from versioning.rules import (
    Behavior,
    DeploymentState,
    Override,
    OverrideKind,
    RevisionMismatch,
    RunVersioning,
    Version,
    VersioningError,
    VersionStatus,
    after_task,
    continued_run,
    next_task_build,
    ramp_bucket,
    resolve_behavior,
    upgrade_allowed,
    version_status,
)

__all__ = [
    "Behavior",
    "DeploymentState",
    "Override",
    "OverrideKind",
    "RevisionMismatch",
    "RunVersioning",
    "Version",
    "VersionStatus",
    "VersioningError",
    "after_task",
    "continued_run",
    "next_task_build",
    "ramp_bucket",
    "resolve_behavior",
    "upgrade_allowed",
    "version_status",
]
