"""``baton deployment`` and ``baton workflow update-versioning``: worker versioning."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Group, RenderableType

from ops.cli_base import (
    BatonCommand,
    BatonGroup,
    CliInputError,
    CliState,
    FiniteRange,
    given,
    pass_state,
    request_id_option,
)
from ops.cli_workflow import run_id_option
from ops.output import emit, kv_table, table, when
from worker.client import Client

__all__ = ["OVERRIDES", "override_body", "register_versioning"]

OVERRIDES = ["pinned", "one-time", "auto-upgrade", "none"]


@click.group(cls=BatonGroup)
def deployment() -> None:
    """Worker deployments: which build gets new work, ramps, and drainage."""


def _build(build_id: str | None, unversioned: bool, what: str) -> str | None:
    if unversioned == (build_id is not None):
        raise CliInputError(f"{what}: give a BUILD_ID or --unversioned (not both)")
    return build_id


def _routing_view(d: dict[str, Any]) -> RenderableType:
    # as `deployment list` says it: no build is unversioned workers (current
    # or, at a share above 0, ramping), and no ramp has no share
    shown = dict(d)
    shown["current"] = d.get("current") or "(unversioned)"
    ramps = bool(d.get("ramping") or d.get("ramping_percent"))
    shown["ramping"] = (d.get("ramping") or "(unversioned)") if ramps else None
    shown["ramping_percent"] = d.get("ramping_percent") if ramps else None
    return kv_table(
        {
            k: shown.get(k)
            for k in (
                "deployment",
                "current",
                "ramping",
                "ramping_percent",
                "revision",
                "changed",
                "tasks_rerouted",
            )
            if k in d
        },
        title="Deployment routing",
    )


_SET_OPTIONS = [
    click.option(
        "--unversioned", is_flag=True, help="Route to unversioned workers instead of a build."
    ),
    click.option(
        "--expect-revision",
        type=click.IntRange(0),
        default=None,
        help="Refuse (REVISION_MISMATCH) if the deployment changed since this revision.",
    ),
    click.option(
        "--allow-no-pollers",
        is_flag=True,
        help="Route to the build even if none of its workers polls now.",
    ),
]


def _set_options(fn: Any) -> Any:
    for opt in reversed(_SET_OPTIONS):
        fn = opt(fn)
    return fn


@deployment.command("set-current")
@click.argument("deployment_name", metavar="DEPLOYMENT", callback=given("a deployment name"))
@click.argument("build_id", required=False, callback=given("a build id, or --unversioned"))
@_set_options
@pass_state
def set_current(
    st: CliState,
    deployment_name: str,
    build_id: str | None,
    unversioned: bool,
    expect_revision: int | None,
    allow_no_pollers: bool,
    output: str,
) -> None:
    """Send the deployment's new work (and auto-upgrade workflows) to BUILD_ID."""
    build = _build(build_id, unversioned, "set-current")
    res = st.run(
        lambda c: c.set_current_version(
            deployment_name,
            build,
            expect_revision=expect_revision,
            allow_no_pollers=allow_no_pollers,
        )
    )
    emit(res, output, _routing_view)


@deployment.command("set-ramping")
@click.argument("deployment_name", metavar="DEPLOYMENT", callback=given("a deployment name"))
@click.argument("build_id", required=False, callback=given("a build id, or --unversioned"))
@click.option(
    "--percent",
    type=FiniteRange(0, 100),
    required=True,
    help="Share of workflow ids (a stable hash of each) sent to the build; 0 keeps the build "
    "ramping with no ids, and 0 with no BUILD_ID ends the ramp.",
)
@_set_options
@pass_state
def set_ramping(
    st: CliState,
    deployment_name: str,
    build_id: str | None,
    percent: float,
    unversioned: bool,
    expect_revision: int | None,
    allow_no_pollers: bool,
    output: str,
) -> None:
    """Ramp BUILD_ID: PERCENT of the ids go to it, the rest to the current build."""
    build = None if percent == 0 and build_id is None else _build(build_id, unversioned, "ramp")
    res = st.run(
        lambda c: c.set_ramping_version(
            deployment_name,
            build,
            percent,
            expect_revision=expect_revision,
            allow_no_pollers=allow_no_pollers,
        )
    )
    emit(res, output, _routing_view)


@deployment.command("list")
@pass_state
def deployment_list(st: CliState, output: str) -> None:
    """The namespace's deployments and where each routes new work."""
    emit(
        st.run(lambda c: c.list_deployments()),
        output,
        _list_view,
    )


def _list_view(d: list[dict[str, Any]]) -> RenderableType:
    # no ramp is `-` in both ramp cells, as in every other table
    def ramp(x: dict[str, Any]) -> tuple[Any, Any]:
        if not (x["ramping"] or x["ramping_percent"]):
            return None, None
        return x["ramping"] or "(unversioned)", x["ramping_percent"]

    return table(
        ["deployment", "current", "ramping", "percent", "revision", "versions"],
        [
            [
                x["deployment"],
                x["current"] or "(unversioned)",
                *ramp(x),
                x["revision"],
                x["versions"],
            ]
            for x in d
        ],
        title="Deployments",
    )


def _describe_view(d: dict[str, Any]) -> RenderableType:
    versions = d.get("versions") or []
    pollers = [(v["version"], p) for v in versions for p in v.get("pollers") or []]
    return Group(
        _routing_view(d),
        table(
            [
                "version",
                "status",
                "open pinned",
                "waiting, no poller",
                "live pollers",
                "task queues",
                "drained since",
            ],
            [
                [
                    v["version"],
                    v["status"],
                    v["open_pinned"],
                    v["waiting_no_poller"],
                    v["live_pollers"],
                    ", ".join(v["task_queues"]),
                    when(v.get("drained_since")),
                ]
                for v in versions
            ],
            title="Versions",
        ),
        table(
            ["version", "identity", "task queue", "last seen", "live"],
            [
                [ver, p["identity"], p["task_queue"], when(p["last_seen"]), p["live"]]
                for ver, p in pollers
            ],
            title="Pollers",
        ),
    )


@deployment.command("describe")
@click.argument("deployment_name", metavar="DEPLOYMENT", callback=given("a deployment name"))
@pass_state
def deployment_describe(st: CliState, deployment_name: str, output: str) -> None:
    """Each version: status (current, ramping, draining, drained, inactive), pollers,
    open pinned workflows, and workflows whose task (a workflow task or an activity
    attempt) waits for the version on a task queue none of its live workers polls."""
    emit(st.run(lambda c: c.describe_deployment(deployment_name)), output, _describe_view)


def override_body(override: str, version: str | None) -> dict[str, Any] | None:
    """The API form of ``--override KIND [--version DEP:BUILD]`` (None clears it)."""
    if override == "none":
        if version:
            raise CliInputError("--override none takes no --version")
        return None
    if override == "auto-upgrade":
        if version:
            raise CliInputError("--override auto-upgrade takes no --version")
        return {"kind": override}
    if not version or ":" not in version:
        raise CliInputError(f"--override {override} needs --version DEPLOYMENT:BUILD_ID")
    dep, _, build = version.partition(":")
    if not dep or not build:
        raise CliInputError(
            f"--override {override}: {version!r} is not DEPLOYMENT:BUILD_ID (both parts, "
            "e.g. payments:41)"
        )
    return {"kind": override, "deployment": dep, "build_id": build}


@click.command("update-versioning", cls=BatonCommand)
@click.argument("workflow_id", callback=given("a workflow id"))
@click.option(
    "--override",
    type=click.Choice(OVERRIDES),
    default=None,
    help="pinned (to --version until changed), one-time (the next workflow task only), "
    "auto-upgrade, or none (clear the override).",
)
@click.option(
    "--version",
    default=None,
    callback=given("DEPLOYMENT:BUILD_ID"),
    help="DEPLOYMENT:BUILD_ID for pinned and one-time.",
)
@click.option(
    "--pinned",
    "pinned_to",
    default=None,
    callback=given("DEPLOYMENT:BUILD_ID"),
    metavar="DEP:BUILD",
    help="= --override pinned --version DEP:BUILD",
)
@click.option(
    "--one-time",
    "once_on",
    default=None,
    callback=given("DEPLOYMENT:BUILD_ID"),
    metavar="DEP:BUILD",
    help="= --override one-time --version DEP:BUILD",
)
@click.option("--auto-upgrade", "auto", is_flag=True, help="= --override auto-upgrade")
@click.option("--unset", is_flag=True, help="= --override none")
@click.option("--reason", default="", help="Recorded in the workflow's history.")
@run_id_option
@request_id_option
@pass_state
def update_versioning(
    st: CliState,
    workflow_id: str,
    override: str | None,
    version: str | None,
    pinned_to: str | None,
    once_on: str | None,
    auto: bool,
    unset: bool,
    reason: str,
    run_id: str | None,
    request_id: str | None,
    output: str,
) -> None:
    """Override where a workflow's tasks go (recorded in its history); --run-id
    overrides that run (a closed one refuses)."""
    given = [
        (k, v)
        for k, v in (
            ("--override", (override, version) if override else None),
            ("--pinned", ("pinned", pinned_to) if pinned_to else None),
            ("--one-time", ("one-time", once_on) if once_on else None),
            ("--auto-upgrade", ("auto-upgrade", None) if auto else None),
            ("--unset", ("none", None) if unset else None),
        )
        if v is not None
    ]
    if len(given) != 1:
        raise CliInputError(
            "give one of --override KIND [--version V], --pinned V, --one-time V, "
            "--auto-upgrade or --unset"
        )
    kind_text, version = given[0][1]
    body = override_body(kind_text, version)

    async def go(c: Client) -> dict[str, Any]:
        h = c.get_workflow_handle(workflow_id, run_id=run_id)
        kind = None if body is None else body["kind"]
        res = await h.update_versioning(kind, version=version, reason=reason, request_id=request_id)
        return {"workflow_id": workflow_id, **res}

    emit(st.run(go), output, lambda d: kv_table(d, title="Versioning override"))


def register_versioning(cli: click.Group) -> None:
    cli.add_command(deployment)
    workflow = cli.commands["workflow"]
    assert isinstance(workflow, click.Group)
    workflow.add_command(update_versioning)
