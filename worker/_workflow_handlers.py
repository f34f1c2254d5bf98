"""The handlers of a run: set, removed and looked up by name, dynamic ones included.

A mixin of :class:`worker._workflow_runtime.WorkflowRuntime`. As in Temporal,
a signal, query or update goes to the handler of its name (one the run set at
run time before the class's method of the name), else to the dynamic handler
(again the run's before the class's ``dynamic=True`` method), which is called
with the name and the arguments as a sequence of :class:`~worker.common.RawValue`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from worker._definition import QUERY, SIGNAL, UPDATE, HandlerDefinition, WorkflowDefinition
from worker._definition import _param_hints as param_hints
from worker.common import RawValue
from worker.converter import PayloadConverter
from worker.wire import Payload

#: (arrival number, signal name, payloads as they arrived)
BufferedSignal = tuple[int, str, Sequence[Any]]


class Handlers:
    """Handlers of a run by kind and name (None: the dynamic one)."""

    _defn: WorkflowDefinition
    _object: Any
    _converter: PayloadConverter
    #: Set at run time, by kind, then by name (None: the dynamic handler).
    _set_handlers: dict[str, dict[str | None, HandlerDefinition]]
    #: Signals no handler took yet, by name.
    _buffered_signals: dict[str, list[BufferedSignal]]
    _signals_buffered: int = 0

    def check_writable(self, what: str) -> None:
        raise NotImplementedError

    def _on_signal(self, name: str, payloads: Sequence[Any]) -> None:
        raise NotImplementedError

    def _buffer_signal(self, name: str, payloads: Sequence[Any]) -> None:
        self._signals_buffered += 1
        self._buffered_signals.setdefault(name, []).append((self._signals_buffered, name, payloads))

    def _class_handler(self, kind: str, name: str | None) -> HandlerDefinition | None:
        defn = self._defn
        if name is None:
            return {SIGNAL: defn.dynamic_signal, QUERY: defn.dynamic_query}.get(
                kind, defn.dynamic_update
            )
        return {SIGNAL: defn.signals, QUERY: defn.queries, UPDATE: defn.updates}[kind].get(name)

    def _own_handler(self, kind: str, name: str | None) -> HandlerDefinition | None:
        """The handler set for exactly ``name`` (None: the dynamic one), as a
        definition whose ``fn`` and ``validator`` are called as they are."""
        defn = self._set_handlers[kind].get(name) or self._class_handler(kind, name)
        if defn is None or not defn.is_method:
            return defn
        validator = defn.validator
        return HandlerDefinition(
            kind=defn.kind,
            name=defn.name,
            fn=defn.fn.__get__(self._object),
            is_async=defn.is_async,
            arg_types=defn.arg_types,
            return_type=defn.return_type,
            validator=None if validator is None else validator.__get__(self._object),
            is_method=False,
            dynamic=defn.dynamic,
        )

    def _handler(self, kind: str, name: str) -> HandlerDefinition | None:
        """The handler a message of ``name`` goes to: its own, else the dynamic one."""
        return self._own_handler(kind, name) or self._own_handler(kind, None)

    def _known(self, kind: str) -> str:
        """The names of the handlers of ``kind``, for an unknown message's error."""
        own = {SIGNAL: self._defn.signals, QUERY: self._defn.queries, UPDATE: self._defn.updates}
        names = {*own[kind], *(n for n in self._set_handlers[kind] if n is not None)}
        return ", ".join(sorted(names)) or "none"

    def _handler_args(
        self, defn: HandlerDefinition, name: str, payloads: Sequence[Payload]
    ) -> list[Any]:
        """A handler's arguments: decoded by its hints, or for a dynamic one
        its name and the payloads as they came."""
        if defn.dynamic:
            return [name, [RawValue(p) for p in payloads]]
        return self._converter.from_payloads(payloads, defn.arg_types)

    def _set(
        self,
        kind: str,
        name: str | None,
        handler: Callable[..., Any] | None,
        validator: Callable[..., Any] | None = None,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"a {kind} name is a non-empty string, not {name!r}")
        if handler is None:
            self._set_handlers[kind].pop(name, None)
            return
        if not callable(handler) or (validator is not None and not callable(validator)):
            raise TypeError(f"the handler and validator of {kind} {name!r} must be callables")
        if kind == UPDATE and inspect.iscoroutinefunction(validator):
            raise TypeError(
                f"the validator of update {name!r} must not be `async def`: it runs before "
                "the update is accepted and cannot wait"
            )
        hints, returns = param_hints(handler, skip_self=False)
        self._set_handlers[kind][name] = HandlerDefinition(
            kind=kind,
            name=name or "",
            fn=handler,
            is_async=inspect.iscoroutinefunction(handler),
            arg_types=hints,
            return_type=returns,
            validator=validator,
            is_method=False,
            dynamic=name is None,
        )

    # ------------------------------------------------------------------ the runtime API

    def set_signal_handler(self, name: str | None, handler: Callable[..., Any] | None) -> None:
        self.check_writable("workflow.set_signal_handler()")
        self._set(SIGNAL, name, handler)
        if handler is None:
            return
        if name is not None:
            waiting = self._buffered_signals.pop(name, [])
        else:
            # every signal no handler took, in the order they arrived
            waiting = sorted(s for signals in self._buffered_signals.values() for s in signals)
            self._buffered_signals.clear()
        for _, signal_name, payloads in waiting:
            self._on_signal(signal_name, payloads)

    def set_query_handler(self, name: str | None, handler: Callable[..., Any] | None) -> None:
        self._set(QUERY, name, handler)

    def set_update_handler(
        self,
        name: str | None,
        handler: Callable[..., Any] | None,
        validator: Callable[..., Any] | None,
    ) -> None:
        self.check_writable("workflow.set_update_handler()")
        self._set(UPDATE, name, handler, validator)

    def get_handler(self, kind: str, name: str | None) -> Callable[..., Any] | None:
        defn = self._own_handler(kind, name)
        return None if defn is None else defn.fn

    def payload_converter(self) -> PayloadConverter:
        return self._converter
