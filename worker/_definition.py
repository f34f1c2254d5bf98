"""Definitions of workflows and activities, as the decorators build them.

The decorators in :mod:`worker.workflow` and :mod:`worker.activity` only mark
functions; :func:`define_workflow` then reads the marks of a whole class at
once, so misuse (no ``@run``, two of them, clashing handler names) is reported
where the class is defined, not when the first task arrives.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from worker.errors import InvalidArgumentError

_WORKFLOW_ATTR = "__baton_workflow_definition__"
_ACTIVITY_ATTR = "__baton_activity_definition__"
_RUN_ATTR = "__baton_workflow_run__"
_HANDLER_ATTR = "__baton_workflow_handler__"
#: On a run method: the definitions of the workflows it is the run method of.
_RUN_OWNERS_ATTR = "__baton_workflow_run_owners__"

SIGNAL = "signal"
QUERY = "query"
UPDATE = "update"


def _param_hints(fn: Callable[..., Any], *, skip_self: bool) -> tuple[tuple[Any, ...], Any]:
    """Type hints of the positional parameters and of the return value.

    Hints that cannot be resolved (forward references to local classes) count
    as missing: the converter then hands over plain JSON values.
    """
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if skip_self:
        params = params[1:]
    return tuple(hints.get(p.name) for p in params), hints.get("return")


def _check_name(name: str | None, what: str) -> None:
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"{what} name must be a non-empty string, got {name!r}")


_D = TypeVar("_D", "ActivityDefinition", "WorkflowDefinition")
_T = TypeVar("_T")


class Registry(dict[str, _T]):
    """Values by workflow or activity type name, and the dynamic one (as
    Temporal's ``dynamic=True`` definitions) that ``get`` gives for any
    other name."""

    has_dynamic: bool = False
    dynamic: _T

    def with_dynamic(self, value: _T) -> Registry[_T]:
        self.dynamic, self.has_dynamic = value, True
        return self

    def __bool__(self) -> bool:
        return self.has_dynamic or len(self) > 0

    def all(self) -> list[_T]:
        """Every value, the dynamic one last."""
        return [*self.values(), *([self.dynamic] if self.has_dynamic else [])]

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self[key]
        return self.dynamic if self.has_dynamic else default


def by_name(definitions: Iterable[_D], kind: str) -> Registry[_D]:
    """Definitions by the name tasks carry, and the dynamic one if any.

    Raises:
        ValueError: Two different definitions share a name (or are both
            dynamic): tasks of that name would go to one of them only, so the
            worker refuses both.
    """
    out: Registry[_D] = Registry()
    for defn in definitions:
        if defn.dynamic:
            if out.has_dynamic and out.dynamic is not defn:
                raise ValueError(f"more than one dynamic {kind} is given: a worker takes one")
            out.with_dynamic(defn)
            continue
        seen = out.setdefault(defn.name, defn)
        if seen is not defn:
            first = getattr(seen, "cls", None) or getattr(seen, "fn", None)
            second = getattr(defn, "cls", None) or getattr(defn, "fn", None)
            raise ValueError(
                f"more than one {kind} is named {defn.name!r} "
                f"({getattr(first, '__qualname__', first)} and "
                f"{getattr(second, '__qualname__', second)}): give one of them another "
                f"name with @{kind}.defn(name=...), or register it on another worker"
            )
    return out


# --------------------------------------------------------------------------- activities


@dataclasses.dataclass(frozen=True)
class ActivityDefinition:
    """An activity function and what the SDK needs to call it.

    Attributes:
        name: The activity type name workflows schedule it by.
        fn: The decorated function.
        is_async: Whether ``fn`` is a coroutine function (else the worker runs
            it in a thread).
        arg_types: Type hints of the positional parameters (None where absent).
        return_type: The return annotation, used to decode the result in
            workflows that pass the function itself.
    """

    name: str
    fn: Callable[..., Any]
    is_async: bool
    arg_types: tuple[Any, ...]
    return_type: Any
    #: Runs every activity type the worker has no other definition of,
    #: given the input as one sequence of ``RawValue``.
    dynamic: bool = False

    @staticmethod
    def from_callable(fn: Callable[..., Any]) -> ActivityDefinition:
        """The definition of a function decorated with ``@activity.defn``.

        Raises:
            TypeError: ``fn`` was not decorated.
        """
        defn = getattr(fn, _ACTIVITY_ATTR, None)
        if not isinstance(defn, ActivityDefinition):
            raise TypeError(
                f"{getattr(fn, '__qualname__', fn)!r} is not an activity: decorate it with "
                "@activity.defn"
            )
        if inspect.ismethod(fn) and defn.fn is fn.__func__:
            # A method of an instance (activities=[repo.fetch], as Temporal takes
            # them): call it bound, so it gets its ``self``, and take its
            # arguments' hints after ``self``.
            return dataclasses.replace(defn, fn=fn, arg_types=defn.arg_types[1:])
        return defn


def define_activity(
    fn: Callable[..., Any], name: str | None, dynamic: bool = False
) -> ActivityDefinition:
    """Build and attach the definition of an activity function."""
    _check_name(name, "activity")
    if inspect.isclass(fn) or not callable(fn):
        raise TypeError(f"@activity.defn expects a function, got {fn!r}")
    if dynamic and name is not None:
        raise TypeError("@activity.defn takes a name or dynamic=True, not both")
    if dynamic:
        # (an activity method is decorated as a function: its ``self`` comes first)
        first = next(iter(inspect.signature(fn).parameters), None)
        check_dynamic_params(fn, "activity", skip_self=first == "self")
    if isinstance(getattr(fn, _ACTIVITY_ATTR, None), ActivityDefinition):
        raise TypeError(f"{fn.__qualname__} is decorated with @activity.defn twice")
    arg_types, return_type = _param_hints(fn, skip_self=False)
    defn = ActivityDefinition(
        name=name or fn.__name__,
        fn=fn,
        is_async=inspect.iscoroutinefunction(fn),
        arg_types=arg_types,
        return_type=return_type,
        dynamic=dynamic,
    )
    setattr(fn, _ACTIVITY_ATTR, defn)
    return defn


def get_activity_name(fn_or_name: str | Callable[..., Any]) -> str:
    """The activity type name of a decorated function, or the name itself.

    Raises:
        TypeError: A function that was not decorated with ``@activity.defn``.
        ValueError: An empty name.
    """
    if isinstance(fn_or_name, str):
        _check_name(fn_or_name, "activity")
        return fn_or_name
    return ActivityDefinition.from_callable(fn_or_name).name


# --------------------------------------------------------------------------- workflows


@dataclasses.dataclass
class _HandlerMark:
    """Mutable mark on a handler function; frozen into a HandlerDefinition by ``defn``."""

    kind: str
    name: str
    validator: Callable[..., Any] | None = None
    dynamic: bool = False


@dataclasses.dataclass(frozen=True)
class HandlerDefinition:
    """A signal, query or update handler of a workflow class.

    Attributes:
        kind: ``"signal"``, ``"query"`` or ``"update"``.
        name: The name clients call it by.
        fn: The (unbound) method.
        is_async: Whether ``fn`` is a coroutine function.
        arg_types: Type hints of its parameters after ``self``.
        return_type: Its return annotation (query and update results).
        validator: For updates, the ``@handler.validator`` method or None.
        is_method: ``fn`` and ``validator`` are methods of the workflow class
            (False: callables a run set at run time, called as they are).
    """

    kind: str
    name: str
    fn: Callable[..., Any]
    is_async: bool
    arg_types: tuple[Any, ...]
    return_type: Any
    validator: Callable[..., Any] | None = None
    is_method: bool = True
    #: Takes every name no other handler of its kind has: called with the
    #: name and the arguments as a sequence of ``RawValue``.
    dynamic: bool = False


@dataclasses.dataclass(frozen=True)
class WorkflowDefinition:
    """A workflow class and its run method and handlers.

    Attributes:
        name: The workflow type name.
        cls: The decorated class.
        run_fn: The ``@workflow.run`` method (unbound).
        arg_types: Type hints of the run method's parameters.
        return_type: The run method's return annotation.
        signals: Signal handlers by name.
        queries: Query handlers by name.
        updates: Update handlers by name.
    """

    name: str
    cls: type
    run_fn: Callable[..., Any]
    arg_types: tuple[Any, ...]
    return_type: Any
    signals: Mapping[str, HandlerDefinition]
    queries: Mapping[str, HandlerDefinition]
    updates: Mapping[str, HandlerDefinition]
    #: Worker versioning: ``pinned`` or ``auto-upgrade`` (None: the worker's default).
    versioning_behavior: str | None = None
    #: Exceptions of the code that fail the run rather than its workflow task.
    failure_exception_types: tuple[type[BaseException], ...] = ()
    #: Runs every workflow type the worker has no other definition of; its
    #: run method takes the input as one sequence of ``RawValue``.
    dynamic: bool = False
    #: The ``dynamic=True`` signal, query and update handlers (None: none).
    dynamic_signal: HandlerDefinition | None = None
    dynamic_query: HandlerDefinition | None = None
    dynamic_update: HandlerDefinition | None = None

    @staticmethod
    def from_class(cls: type) -> WorkflowDefinition:
        """The definition of a class decorated with ``@workflow.defn``.

        Raises:
            TypeError: The class was not decorated.
        """
        defn = cls.__dict__.get(_WORKFLOW_ATTR) if isinstance(cls, type) else None
        if not isinstance(defn, WorkflowDefinition):
            raise TypeError(f"{cls!r} is not a workflow: decorate the class with @workflow.defn")
        return defn


def mark_run(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a method as the workflow's run method."""
    if not inspect.isfunction(fn):
        raise TypeError(f"@workflow.run expects a method, got {fn!r}")
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(f"@workflow.run method {fn.__qualname__} must be `async def`")
    setattr(fn, _RUN_ATTR, True)
    return fn


def check_dynamic_params(fn: Callable[..., Any], what: str, *, skip_self: bool) -> None:
    """A dynamic handler, workflow or activity must take its arguments as
    Temporal's do: ``(name, args)`` for a handler, ``(args)`` for the others."""
    wanted = 2 if what.endswith("handler") else 1
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ][1 if skip_self else 0 :]
    if len(params) != wanted:
        takes = "(name, args: Sequence[RawValue])" if wanted == 2 else "(args: Sequence[RawValue])"
        raise TypeError(
            f"dynamic {what} {getattr(fn, '__qualname__', fn)} must take {takes}"
            + (" after self" if skip_self else "")
        )


def mark_handler(
    kind: str, fn: Callable[..., Any], name: str | None, dynamic: bool = False
) -> Callable[..., Any]:
    """Mark a method as a signal, query or update handler."""
    _check_name(name, kind)
    if not inspect.isfunction(fn):
        raise TypeError(f"@workflow.{kind} expects a method, got {fn!r}")
    if dynamic and name is not None:
        raise TypeError(f"@workflow.{kind} takes a name or dynamic=True, not both")
    if dynamic:
        check_dynamic_params(fn, f"{kind} handler", skip_self=True)
    if getattr(fn, _HANDLER_ATTR, None) is not None:
        raise TypeError(f"{fn.__qualname__} is already a workflow handler")
    if kind == QUERY and inspect.iscoroutinefunction(fn):
        raise TypeError(
            f"@workflow.query method {fn.__qualname__} must not be `async def`: "
            "queries read state and cannot wait"
        )
    mark = _HandlerMark(kind=kind, name=name or fn.__name__, dynamic=dynamic)
    setattr(fn, _HANDLER_ATTR, mark)
    if kind == UPDATE:
        setattr(fn, "validator", _validator_decorator(fn, mark))  # noqa: B010
    return fn


def _validator_decorator(
    update_fn: Callable[..., Any], mark: _HandlerMark
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def validator(vfn: Callable[..., Any]) -> Callable[..., Any]:
        if not inspect.isfunction(vfn):
            raise TypeError(f"@{update_fn.__name__}.validator expects a method, got {vfn!r}")
        if inspect.iscoroutinefunction(vfn):
            raise TypeError(
                f"update validator {vfn.__qualname__} must not be `async def`: "
                "it runs before the update is accepted and cannot wait"
            )
        if mark.validator is not None:
            raise TypeError(f"update {mark.name!r} already has a validator")
        mark.validator = vfn
        return vfn

    return validator


VERSIONING_BEHAVIORS = ("pinned", "auto-upgrade")


class VersioningBehavior(StrEnum):
    """Where a workflow's runs go on versioned workers (see ``Worker(deployment=...)``)."""

    #: Every workflow task of a run goes to the build that ran its first.
    PINNED = "pinned"
    #: Each workflow task goes to the deployment's target build.
    AUTO_UPGRADE = "auto-upgrade"


def workflow_definition(workflow: type | Callable[..., Any]) -> WorkflowDefinition:
    """The definition of a ``@workflow.defn`` class, or of the class whose
    ``@workflow.run`` method is given (``Order.run``, as a client may name it)."""
    if inspect.isfunction(workflow) and getattr(workflow, _RUN_ATTR, False):
        owners = getattr(workflow, _RUN_OWNERS_ATTR, [])
        if len(owners) == 1:
            return owners[0]  # type: ignore[no-any-return]
        if owners:
            names = ", ".join(d.name for d in owners)
            raise TypeError(
                f"{workflow.__qualname__} is the run method of several workflows ({names}): "
                "name the workflow by its class or its name"
            )
        raise TypeError(
            f"{workflow.__qualname__} is the run method of no workflow: decorate its class "
            "with @workflow.defn"
        )
    return WorkflowDefinition.from_class(workflow)  # type: ignore[arg-type]


def workflow_name(workflow: str | type | Callable[..., Any]) -> str:
    """The type name of a workflow given by name, by its ``@workflow.defn`` class
    or by its ``@workflow.run`` method."""
    if isinstance(workflow, str):
        return workflow
    defn = workflow_definition(workflow)
    if defn.dynamic:
        raise InvalidArgumentError(
            f"{defn.cls.__qualname__} is a dynamic workflow, which runs types by other "
            "names: name the workflow type to start by its name"
        )
    return defn.name


def result_type_of(workflow: str | type | Callable[..., Any]) -> Any:
    """What a workflow's result decodes to: its run method's return annotation
    (None for a workflow named by its name only)."""
    return None if isinstance(workflow, str) else workflow_definition(workflow).return_type


_PLURAL = {"query": "queries"}


def handler_name(handler: str | Callable[..., Any], kind: str) -> str:
    """The name a signal, query or update goes by, given by name or by its
    handler method (``Order.approve``)."""
    if isinstance(handler, str):
        return handler
    mark = getattr(handler, _HANDLER_ATTR, None)
    if not isinstance(mark, _HandlerMark) or mark.kind != kind:
        raise TypeError(
            f"{handler!r} is not a @workflow.{kind} handler: name the {kind} by its name "
            f"or pass its @workflow.{kind} method"
        )
    if mark.dynamic:
        raise InvalidArgumentError(
            f"{getattr(handler, '__qualname__', handler)} is a dynamic {kind} handler, "
            f"which takes {_PLURAL.get(kind, kind + 's')} of other names: "
            f"name the {kind} to send by its name"
        )
    return mark.name


def handler_result_type(handler: str | Callable[..., Any]) -> Any:
    """What a query's or update's result decodes to when the handler method is
    given: its return annotation (None for a handler named by its name)."""
    if isinstance(handler, str) or getattr(handler, _HANDLER_ATTR, None) is None:
        return None
    return _param_hints(handler, skip_self=True)[1]


def check_behavior(value: str | None, what: str) -> str | None:
    """A behaviour as the wire carries it (``PINNED`` and ``auto_upgrade`` read too)."""
    if value is None:
        return None
    normal = str(value).strip().lower().replace("_", "-")
    if normal not in VERSIONING_BEHAVIORS:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(VERSIONING_BEHAVIORS)}")
    return normal


def exception_types(given: object, what: str) -> tuple[type[BaseException], ...]:
    """``given`` as a tuple of exception classes; anything else is a TypeError naming ``what``."""
    error = TypeError(f"{what} is a list of exception classes, not {given!r:.80}")
    if not isinstance(given, Iterable) or isinstance(given, str | type):
        raise error
    items = tuple(given)
    types = tuple(t for t in items if isinstance(t, type) and issubclass(t, BaseException))
    if len(types) != len(items):
        raise error
    return types


def define_workflow(
    cls: type,
    name: str | None,
    versioning_behavior: str | None = None,
    failure_exception_types: Sequence[type[BaseException]] = (),
    dynamic: bool = False,
) -> WorkflowDefinition:
    """Read the marks of a class, check them and attach its definition."""
    _check_name(name, "workflow")
    if dynamic and name is not None:
        raise TypeError("@workflow.defn takes a name or dynamic=True, not both")
    failure_types = exception_types(failure_exception_types, "failure_exception_types")
    versioning_behavior = check_behavior(versioning_behavior, "versioning_behavior")
    if not inspect.isclass(cls):
        raise TypeError(f"@workflow.defn expects a class, got {cls!r}")
    # Walk the MRO most-derived first so that an override replaces the base
    # class's method of the same attribute name instead of clashing with it.
    seen: set[str] = set()
    runs: list[tuple[str, Callable[..., Any]]] = []
    handlers: dict[str, dict[str, HandlerDefinition]] = {SIGNAL: {}, QUERY: {}, UPDATE: {}}
    dynamics: dict[str, HandlerDefinition] = {}
    owners: dict[tuple[str, str], str] = {}
    for klass in cls.__mro__:
        for attr, value in vars(klass).items():
            if attr in seen:
                continue
            seen.add(attr)
            if not inspect.isfunction(value):
                continue
            if getattr(value, _RUN_ATTR, False):
                runs.append((f"{klass.__qualname__}.{attr}", value))
            mark = getattr(value, _HANDLER_ATTR, None)
            if isinstance(mark, _HandlerMark):
                key = (mark.kind, "" if mark.dynamic else mark.name)
                if key in owners:
                    named = "dynamic" if mark.dynamic else f"named {mark.name!r}"
                    raise ValueError(
                        f"workflow {cls.__qualname__} has two {mark.kind} handlers {named}: "
                        f"{owners[key]} and {klass.__qualname__}.{attr}"
                    )
                owners[key] = f"{klass.__qualname__}.{attr}"
                arg_types, return_type = _param_hints(value, skip_self=True)
                handler = HandlerDefinition(
                    kind=mark.kind,
                    name=mark.name,
                    fn=value,
                    is_async=inspect.iscoroutinefunction(value),
                    arg_types=arg_types,
                    return_type=return_type,
                    validator=mark.validator,
                    dynamic=mark.dynamic,
                )
                if mark.dynamic:
                    dynamics[mark.kind] = handler
                else:
                    handlers[mark.kind][mark.name] = handler
    if not runs:
        raise ValueError(
            f"workflow {cls.__qualname__} has no @workflow.run method: mark its entry point "
            "`async def` method with @workflow.run"
        )
    if len(runs) > 1:
        raise ValueError(
            f"workflow {cls.__qualname__} has {len(runs)} @workflow.run methods "
            f"({', '.join(n for n, _ in runs)}); it must have exactly one"
        )
    run_fn = runs[0][1]
    if dynamic:
        check_dynamic_params(run_fn, "workflow run method", skip_self=True)
    arg_types, return_type = _param_hints(run_fn, skip_self=True)
    defn = WorkflowDefinition(
        name=name or cls.__name__,
        cls=cls,
        run_fn=run_fn,
        arg_types=arg_types,
        return_type=return_type,
        signals=MappingProxyType(handlers[SIGNAL]),
        queries=MappingProxyType(handlers[QUERY]),
        updates=MappingProxyType(handlers[UPDATE]),
        versioning_behavior=versioning_behavior,
        failure_exception_types=failure_types,
        dynamic=dynamic,
        dynamic_signal=dynamics.get(SIGNAL),
        dynamic_query=dynamics.get(QUERY),
        dynamic_update=dynamics.get(UPDATE),
    )
    setattr(cls, _WORKFLOW_ATTR, defn)
    owners_of_run = [d for d in getattr(run_fn, _RUN_OWNERS_ATTR, []) if d.cls is not cls]
    setattr(run_fn, _RUN_OWNERS_ATTR, [*owners_of_run, defn])
    return defn
