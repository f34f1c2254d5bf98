"""What a batch job does to each workflow it matches: pluggable operation kinds.

An operation checks its parameters when the job is started (so a bad job is
refused before it exists) and applies itself to one run through the region's
own HTTP API, with a request id derived from the job and the run: a page that
is retried after a crash or a failover applies nothing twice (the store keeps
request ids with the run, in every region). New kinds (pause, unpause,
versioning overrides) register with :func:`register`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from store.deployments import check_version, require_version
from store.errors import DeploymentNotFound, InvalidArgument
from store.namespaces import Namespace
from worker import wire
from worker._http import wf_path

#: (client, namespace, workflow id, run id, params, reason, request id) -> whether
#: the run changed (None: it did; False: it was already as asked, counted skipped)
Apply = Callable[[Any, str, str, str, dict[str, Any], str, str], Awaitable[bool | None]]


@dataclass(frozen=True)
class Operation:
    kind: str
    #: Checks and normalises the parameters; raises InvalidArgument.
    check: Callable[[dict[str, Any]], dict[str, Any]]
    apply: Apply
    #: One line for `batch list`.
    describe: Callable[[dict[str, Any]], str]
    #: The parameter names it takes: any other is refused, not ignored.
    accepts: frozenset[str] = frozenset()
    #: Checks the parameters against the namespace as it is (e.g. that a
    #: version exists), so a job that would fail on every run is not stored.
    check_in: Callable[[Namespace, dict[str, Any]], None] | None = None

    def checked(self, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters checked and normalised; an unknown name (a typo of an
        optional one would else silently run the job with its default) or a bad
        value raises InvalidArgument."""
        unknown = sorted(set(params) - self.accepts)
        if unknown:
            takes = ", ".join(sorted(self.accepts)) or "no parameters"
            raise InvalidArgument(
                f"a {self.kind} batch does not take {', '.join(map(repr, unknown))}; "
                f"it takes {takes}",
                unknown=unknown,
                accepted=sorted(self.accepts),
            )
        return self.check(params)


OPERATIONS: dict[str, Operation] = {}


def register(op: Operation) -> None:
    """Add an operation kind (a later registration of a kind replaces it)."""
    OPERATIONS[op.kind] = op


def get(kind: str) -> Operation:
    op = OPERATIONS.get(kind)
    if op is None:
        raise InvalidArgument(
            f"unknown batch operation {kind!r}; use one of " + ", ".join(sorted(OPERATIONS))
        )
    return op


def _no_params(params: dict[str, Any]) -> dict[str, Any]:
    return {}


async def _post(c: Any, ns: str, wid: str, route: str, body: dict[str, Any]) -> None:
    await c.call("POST", wf_path(ns, wid, route), {**body, "identity": "baton-batch"})


async def _terminate(
    c: Any, ns: str, wid: str, rid: str, p: dict[str, Any], reason: str, request_id: str
) -> None:
    await _post(
        c, ns, wid, "/terminate", {"run_id": rid, "reason": reason, "request_id": request_id}
    )


async def _cancel(
    c: Any, ns: str, wid: str, rid: str, p: dict[str, Any], reason: str, request_id: str
) -> None:
    await _post(c, ns, wid, "/cancel", {"run_id": rid, "reason": reason, "request_id": request_id})


def _check_signal(params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("signal_name")
    if not isinstance(name, str) or not 1 <= len(name) <= 1000:
        raise InvalidArgument("a signal batch needs signal_name (1-1000 characters)")
    payloads = params.get("input") or []
    bad = InvalidArgument(
        "signal input must be a list of encoded payloads, each an object of metadata "
        "(strings) and data (base64): the client's encode() makes them"
    )
    if not isinstance(payloads, list):
        raise bad
    checked = []
    for p in payloads:
        # checked as the signal route will read it, so a job is not stored
        # only to fail on every run it reaches
        if not isinstance(p, dict) or not {"metadata", "data"} >= set(p) or "data" not in p:
            raise bad
        try:
            checked.append(wire.Payload.model_validate(p).model_dump())
        except ValidationError:
            raise bad from None
    return {"signal_name": name, "input": checked}


async def _signal(
    c: Any, ns: str, wid: str, rid: str, p: dict[str, Any], reason: str, request_id: str
) -> None:
    body = {"signal_name": p["signal_name"], "input": p["input"]}
    await _post(c, ns, wid, "/signal", {**body, "run_id": rid, "request_id": request_id})


def _check_reset(params: dict[str, Any]) -> dict[str, Any]:
    try:
        to = wire.ResetRequest(reason="-", to=params.get("to") or "last-workflow-task").to
    except ValidationError:
        raise InvalidArgument(
            "a reset batch resets to first-workflow-task or last-workflow-task"
        ) from None
    reapply = params.get("reapply", "all")
    if reapply not in ("all", "signals", "none"):
        raise InvalidArgument("reapply is all, signals or none")
    return {"to": to, "reapply": reapply}


async def _reset(
    c: Any, ns: str, wid: str, rid: str, p: dict[str, Any], reason: str, request_id: str
) -> bool | None:
    body = {"to": p["to"], "reapply": p["reapply"], "reason": reason}
    current = await c.call("GET", wf_path(ns, wid))
    if (current.get("execution") or {}).get("run_id") != rid:
        # A reset of an earlier run would end the current one (a run of the
        # chain the job may have reset already): a batch resets current runs.
        return False
    await _post(c, ns, wid, "/reset", {**body, "run_id": rid, "request_id": request_id})
    return None


def _check_versioning(params: dict[str, Any]) -> dict[str, Any]:
    try:
        req = wire.UpdateVersioningRequest(override=params.get("override"))
    except ValidationError as exc:
        # said as the API says a bad request, not as pydantic's multi-line dump
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'override'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise InvalidArgument(
            f"a versioning batch's override is not valid ({problems}): give "
            '{"kind": "pinned", "one-time" or "auto-upgrade", "deployment": D, "build_id": B} '
            "(no version for auto-upgrade), or null to clear the override"
        ) from None
    o = req.override
    if o is not None and o.kind != "auto-upgrade" and not (o.deployment and o.build_id):
        raise InvalidArgument(f"a {o.kind} override names a version (deployment and build id)")
    return {"override": o.model_dump() if o else None}


def _check_versioning_in(ns: Namespace, params: dict[str, Any]) -> None:
    o = params["override"]
    if o is not None and o.get("build_id"):
        check_version(o["deployment"], o["build_id"])
        require_version(ns.deployments, o["deployment"], o["build_id"])


async def _versioning(
    c: Any, ns: str, wid: str, rid: str, p: dict[str, Any], reason: str, request_id: str
) -> bool:
    # a run whose override is already the one asked counts as skipped, as a
    # pause of a paused run does
    body = {"override": p["override"], "reason": reason, "run_id": rid}
    res = await c.call(
        "POST",
        wf_path(ns, wid, "/versioning"),
        {**body, "request_id": request_id, "identity": "baton-batch"},
    )
    return bool(res.get("changed"))


def _describe_versioning(p: dict[str, Any]) -> str:
    o = p.get("override")
    if not o:
        return "clear versioning override"
    version = f" {o['deployment']}:{o['build_id']}" if o.get("build_id") else ""
    return f"versioning override {o['kind']}{version}"


register(Operation("terminate", _no_params, _terminate, lambda p: "terminate"))
register(Operation("cancel", _no_params, _cancel, lambda p: "cancel"))
register(
    Operation(
        "signal",
        _check_signal,
        _signal,
        lambda p: f"signal {p['signal_name']}",
        frozenset({"signal_name", "input"}),
    )
)
register(
    Operation(
        "reset", _check_reset, _reset, lambda p: f"reset to {p['to']}", frozenset({"to", "reapply"})
    )
)
register(
    Operation(
        "update-versioning",
        _check_versioning,
        _versioning,
        _describe_versioning,
        frozenset({"override"}),
        check_in=_check_versioning_in,
    )
)


def _check_unpause(params: dict[str, Any]) -> dict[str, Any]:
    to_current = params.get("to_current")
    to_current = False if to_current is None else to_current
    if not isinstance(to_current, bool):
        # bool("false") is True: a string must not pick the current build
        raise InvalidArgument("to_current is true or false")
    build_id = params.get("build_id")
    if build_id is not None and (not isinstance(build_id, str) or not build_id):
        raise InvalidArgument("build_id is a build of the runs' deployment")
    if to_current and build_id:
        raise InvalidArgument("give to_current or build_id, not both")
    return {"to_current": to_current, "build_id": build_id}


def _check_unpause_in(ns: Namespace, params: dict[str, Any]) -> None:
    """A build no deployment of the namespace has: the job would fail on every
    run it matched (and `batch start` exit 0), as an override onto it would."""
    build = params.get("build_id")
    if build is None:
        return
    builds = {b for d in ns.deployments.values() for b in (d.get("versions") or {})}
    if build not in builds:
        raise DeploymentNotFound(
            f"no deployment of namespace {ns.name!r} has a build {build!r}: its builds are "
            f"{', '.join(sorted(builds)) or 'none'}; name one of them, or start a worker of "
            "that build first"
        )


def _pauser(route: str) -> Apply:
    async def apply(
        c: Any, ns: str, wid: str, rid: str, p: dict[str, Any], reason: str, request_id: str
    ) -> bool:
        res = await c.call(
            "POST",
            wf_path(ns, wid, route),
            {
                **p,
                "run_id": rid,
                "reason": reason,
                "request_id": request_id,
                "identity": "baton-batch",
            },
        )
        return bool(res.get("changed"))

    return apply


def _describe_unpause(p: dict[str, Any]) -> str:
    if p.get("to_current"):
        return "unpause onto the current build"
    return f"unpause onto build {p['build_id']}" if p.get("build_id") else "unpause"


register(Operation("pause", _no_params, _pauser("/pause"), lambda p: "pause"))
register(
    Operation(
        "unpause",
        _check_unpause,
        _pauser("/unpause"),
        _describe_unpause,
        frozenset({"to_current", "build_id"}),
        check_in=_check_unpause_in,
    )
)
