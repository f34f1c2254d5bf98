"""Turning Python values into payloads and back.

A :class:`DataConverter` has two stages, as in most durable-execution SDKs:
the payload converter (values to JSON bytes, synchronous and deterministic, so
workflow code can use it) and an optional codec (bytes to bytes, asynchronous,
for encryption or compression) that runs at the edge of the SDK, before
anything leaves the process and after anything arrives.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import enum
import math
import types
import typing
import uuid
from abc import ABC, abstractmethod
from collections import abc as cabc
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pydantic

from worker.common import RawValue
from worker.errors import InvalidArgumentError
from worker.wire import Payload

ENCODING = "encoding"
JSON_PLAIN = "json/plain"
BINARY_NULL = "binary/null"
BINARY_PLAIN = "binary/plain"


def payload_bytes(payload: Payload) -> bytes:
    """The raw bytes a payload carries."""
    return binascii.a2b_base64(payload.data)  # what base64.b64decode does, one call less


def make_payload(metadata: dict[str, str], data: bytes) -> Payload:
    """Build a wire payload from raw bytes."""
    return Payload(metadata=metadata, data=base64.b64encode(data).decode("ascii"))


class PayloadConverter:
    """JSON payload converter: ``None``, ``bytes`` and JSON-serialisable values.

    Dataclasses and pydantic models are sent as JSON objects; datetimes,
    dates and times as RFC 3339 strings, UUIDs as strings, enums as their
    values, tuples (named ones too) and sets as lists (a set's members sorted when they sort,
    so a workflow's payloads are the same on every replay). The receiving
    function's annotations rebuild them: a dataclass, a pydantic model, a
    ``datetime``, ``date``, ``time``, ``UUID`` or ``Enum`` type, and those
    inside ``list[...]``, ``Sequence[...]``, ``set[...]``, ``dict[..., ...]``,
    ``Mapping[..., ...]``, ``tuple[...]`` and ``X | None``, and a
    ``NamedTuple`` (from a list, or an object of its fields).
    A float that is NaN or infinite has no JSON form and is refused
    (``InvalidArgumentError``), not sent as ``null``.
    """

    def to_payload(self, value: Any) -> Payload:
        if isinstance(value, RawValue):
            return value.payload
        if value is None:
            return make_payload({ENCODING: BINARY_NULL}, b"")
        if isinstance(value, bytes | bytearray):
            return make_payload({ENCODING: BINARY_PLAIN}, bytes(value))
        try:
            data = orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:
            if (where := find_in(value, "value", past_64_bits)) is not None:
                raise InvalidArgumentError(
                    f"{where} is an integer past 64 bits, which JSON does not carry "
                    "exactly; send it as a string"
                ) from exc
            raise InvalidArgumentError(
                f"value of type {type(value).__name__} is not JSON-serialisable: {exc}; "
                "pass JSON types, dataclasses, pydantic models or bytes"
            ) from exc
        # orjson writes NaN and infinities as null: a value would come back
        # as None without a word. Only a payload with a null can hold one.
        if b"null" in data and (where := find_in(value, "value", non_finite)) is not None:
            raise InvalidArgumentError(
                f"{where} is a float JSON cannot carry (NaN or infinite); "
                "send it as a string or None instead"
            )
        return make_payload({ENCODING: JSON_PLAIN}, data)

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        if type_hint is RawValue:
            return RawValue(payload)
        return self._from_parts(payload.metadata, payload.data, type_hint)

    def _from_parts(self, metadata: dict[str, str], data: str, type_hint: Any) -> Any:
        encoding = metadata.get(ENCODING, JSON_PLAIN)
        if encoding == BINARY_NULL:
            return None
        raw = binascii.a2b_base64(data)
        if encoding == BINARY_PLAIN:
            return raw
        if encoding != JSON_PLAIN:
            raise InvalidArgumentError(
                f"payload encoding {encoding!r} is not understood by this converter; "
                "was it encrypted by a codec this worker or client is not configured with? "
                "(`AesGcmCodec.from_env()` and the `baton` CLI read the keys from "
                "BATON_ENCRYPTION_KEYS)"
            )
        value = orjson.loads(raw)
        return _rebuild(value, type_hint)

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        return [self.to_payload(v) for v in values]

    def from_wire(self, values: Sequence[Any], type_hints: Sequence[Any] = ()) -> list[Any]:
        """Values of payloads as they arrived (JSON objects), like :meth:`from_payloads`.

        The usual shape is read as it is, without a Payload model per value
        (a replay decodes thousands); anything else goes through the model.
        A subclass gets :meth:`from_payloads` on models, so its own
        ``from_payload`` or ``from_payloads`` is used.
        """
        if type(self) is not PayloadConverter:
            return self.from_payloads([Payload.model_validate(v) for v in values], type_hints)
        n = len(type_hints)
        out = []
        for i, v in enumerate(values):
            hint = type_hints[i] if i < n else None
            if (
                hint is not RawValue
                and type(v) is dict
                and type(metadata := v.get("metadata")) is dict
                and type(data := v.get("data")) is str
            ):
                out.append(self._from_parts(metadata, data, hint))
            else:
                out.append(self.from_payload(Payload.model_validate(v), hint))
        return out

    def from_payloads(
        self, payloads: Sequence[Payload], type_hints: Sequence[Any] = ()
    ) -> list[Any]:
        n = len(type_hints)
        return [
            self.from_payload(p, type_hints[i] if i < n else None) for i, p in enumerate(payloads)
        ]


def find_in(value: Any, where: str, bad: Callable[[Any], bool]) -> str | None:
    """Where in ``value`` (dicts, lists, tuples, dataclasses) a leaf ``bad``
    holds for is, as ``where[key][index]...``; None if nowhere."""
    if bad(value):
        return where
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    elif isinstance(value, pydantic.BaseModel):
        items = ((name, getattr(value, name)) for name in type(value).model_fields)
    else:
        return None
    for key, item in items:
        found = find_in(item, f"{where}[{key!r}]", bad)
        if found is not None:
            return found
    return None


def past_64_bits(value: Any) -> bool:
    """An integer orjson refuses (it writes -2**63 up to 2**64 - 1)."""
    return isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64


def located(
    exc: InvalidArgumentError, converter: PayloadConverter, labelled: Sequence[tuple[str, Any]]
) -> InvalidArgumentError:
    """``exc`` (a value the converter refused) naming which of ``labelled``
    values it is, as ``memo['key']['field']`` or ``argument 2[0]``, in place of
    the bare ``value`` the converter sees; ``exc`` itself if none is refused alone."""
    for label, value in labelled:
        try:
            converter.to_payload(value)
        except InvalidArgumentError as refused:
            if refused.message.startswith("value"):
                message = label + refused.message.removeprefix("value")
                return InvalidArgumentError(message, details=refused.details)
            return refused
    return exc


def non_finite(value: Any) -> bool:
    """A float JSON cannot carry (orjson writes it as null)."""
    return isinstance(value, float) and not math.isfinite(value)


def _json_default(value: Any) -> Any:
    """What orjson cannot write itself: pydantic models, sets and named tuples."""
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if _is_named_tuple(type(value)):
        return list(value)  # as a tuple, and as Python's json writes one
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:  # members without an order: as they come
            return list(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


#: Generic origins rebuilt as a list, a set and a dict of their members.
_AS_LIST = frozenset({list, cabc.Sequence, cabc.MutableSequence, cabc.Iterable, cabc.Collection})
_AS_SET = frozenset({set, frozenset, cabc.Set, cabc.MutableSet})
_AS_DICT = frozenset({dict, cabc.Mapping, cabc.MutableMapping})

#: Hints a JSON value already satisfies as decoded: nothing to rebuild.
_AS_DECODED = frozenset({int, float, str, bool, dict, list, object, Any})
#: Types orjson writes as strings, rebuilt from them by their hint.
_FROM_STRING: dict[Any, Any] = {
    datetime.datetime: datetime.datetime.fromisoformat,
    datetime.date: datetime.date.fromisoformat,
    datetime.time: datetime.time.fromisoformat,
    uuid.UUID: uuid.UUID,
}


def _rebuild(value: Any, type_hint: Any) -> Any:
    if type_hint is None or value is None:
        return value
    try:
        if type_hint in _AS_DECODED:
            return value
        parse = _FROM_STRING.get(type_hint)
    except TypeError:  # an unhashable hint: the slow path below
        parse = None
    if parse is not None:
        return parse(value) if isinstance(value, str) else value
    if isinstance(type_hint, type):
        if dataclasses.is_dataclass(type_hint) and isinstance(value, dict):
            hints = typing.get_type_hints(type_hint)
            kwargs = {
                f.name: _rebuild(value[f.name], hints.get(f.name))
                for f in dataclasses.fields(type_hint)
                if f.name in value
            }
            return type_hint(**kwargs)
        if issubclass(type_hint, pydantic.BaseModel):
            return type_hint.model_validate(value)
        if issubclass(type_hint, enum.Enum):
            return type_hint(value)
        if type_hint is tuple and isinstance(value, list):
            return tuple(value)
        if _is_named_tuple(type_hint) and isinstance(value, list | dict):
            hints = typing.get_type_hints(type_hint)
            fields: tuple[str, ...] = type_hint._fields  # type: ignore[attr-defined]
            if isinstance(value, dict):  # as a client that is not Python writes it
                # (a key that is no field is left out, as a dataclass's is)
                kwargs = {f: _rebuild(value[f], hints.get(f)) for f in fields if f in value}
                return type_hint(**kwargs)
            # (fewer values: the defaults fill in; more: the constructor refuses them)
            rebuilt = [_rebuild(v, hints.get(f)) for v, f in zip(value, fields, strict=False)]
            return type_hint(*rebuilt, *value[len(fields) :])
        if type_hint in (set, frozenset) and isinstance(value, list):
            return type_hint(value)
        return value
    origin = typing.get_origin(type_hint)
    args = typing.get_args(type_hint)
    if origin in _AS_LIST and isinstance(value, list):
        return [_rebuild(v, args[0]) for v in value] if args else value
    if origin in _AS_SET and isinstance(value, list):
        members = (_rebuild(v, args[0]) for v in value) if args else value
        return frozenset(members) if origin is frozenset else set(members)
    if origin in _AS_DICT and len(args) == 2 and isinstance(value, dict):
        return {k: _rebuild(v, args[1]) for k, v in value.items()}
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_rebuild(v, args[0]) for v in value)
        if len(args) == len(value):
            return tuple(_rebuild(v, a) for v, a in zip(value, args, strict=True))
        return tuple(value)
    if origin is typing.Union or origin is types.UnionType:
        # X | None (Optional[X]): the value is not None here, so it is an X
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) == 1:
            return _rebuild(value, kinds[0])
    return value


def _is_named_tuple(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, "_fields")


#: JSON's scalars a handler's input is checked against, and what passes for each.
_SCALARS: dict[Any, tuple[type, ...]] = {
    int: (int,),  # a bool is an int, as in Python
    float: (int, float),
    str: (str,),
    bool: (bool,),
}


def decode_input(
    converter: PayloadConverter, payloads: Sequence[Payload], type_hints: Sequence[Any], of: str
) -> list[Any]:
    """A workflow's or activity's arguments, refused (``TypeError`` naming the
    argument) when plainly not of their hints' kinds: a ``"1"`` for an ``int``
    would otherwise run on as it came and fail far from the mistake, or not at all.
    """
    args = converter.from_payloads(payloads, type_hints)
    if (problem := input_mismatch(args, type_hints)) is not None:
        raise TypeError(f"{of} input: {problem}")
    return args


def input_mismatch(values: Sequence[Any], type_hints: Sequence[Any]) -> str | None:
    """Why decoded handler arguments plainly are not of their hints' kinds (a
    string where an ``int`` is annotated, say), or None if they fit.

    Decoding leaves JSON's scalars as they came (see :func:`_rebuild`), so a
    sender's mistake would otherwise reach the handler, fail the workflow
    task on every retry, and hold the workflow up. Scalars are checked at any
    depth of dataclasses, lists, sets, tuples, dicts and ``X | None``.
    """
    for i, (value, hint) in enumerate(zip(values, type_hints, strict=False)):
        if (problem := _mismatch(value, hint, f"argument {i + 1}")) is not None:
            return problem
    return None


def _mismatch(value: Any, hint: Any, where: str) -> str | None:
    if value is None or hint is None:
        return None
    try:
        kinds = _SCALARS.get(hint)
    except TypeError:  # an unhashable hint
        kinds = None
    if kinds is not None:
        if isinstance(value, kinds):
            return None
        return f"{where} should be {hint.__name__}, got {type(value).__name__} {value!r:.40}"
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, hint):
        hints = typing.get_type_hints(hint)
        for f in dataclasses.fields(hint):
            problem = _mismatch(getattr(value, f.name), hints.get(f.name), f"{where}.{f.name}")
            if problem is not None:
                return problem
        return None
    if _is_named_tuple(hint) and isinstance(value, hint):
        hints = typing.get_type_hints(hint)
        for name in hint._fields:
            problem = _mismatch(getattr(value, name), hints.get(name), f"{where}.{name}")
            if problem is not None:
                return problem
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    pairs: Any = ()
    if (
        (origin in _AS_LIST or origin in _AS_SET)
        and args
        and isinstance(value, list | set | frozenset)
    ):
        pairs = ((f"{where}[{i}]", v, args[0]) for i, v in enumerate(value))
    elif origin in _AS_DICT and len(args) == 2 and isinstance(value, dict):
        pairs = ((f"{where}[{k!r}]", v, args[1]) for k, v in value.items())
    elif origin is tuple and isinstance(value, tuple):
        if len(args) == 2 and args[1] is Ellipsis:
            pairs = ((f"{where}[{i}]", v, args[0]) for i, v in enumerate(value))
        elif len(args) == len(value):
            pairs = (
                (f"{where}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
    elif origin is typing.Union or origin is types.UnionType:
        kinds_ = [a for a in args if a is not type(None)]
        if len(kinds_) == 1:
            return _mismatch(value, kinds_[0], where)
    for at, v, a in pairs:
        if (problem := _mismatch(v, a, at)) is not None:
            return problem
    return None


class PayloadCodec(ABC):
    """Bytes-to-bytes transformation of payloads (encryption, compression).

    ``decode`` must pass through payloads it did not encode, so histories
    written before the codec was turned on still read.
    """

    @abstractmethod
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encode payloads before they leave the process."""

    @abstractmethod
    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decode payloads after they arrive."""


@dataclasses.dataclass(frozen=True)
class DataConverter:
    """How the SDK turns values into payloads.

    Attributes:
        payload_converter: Values to payloads and back (synchronous, used
            inside workflow code).
        codec: Optional bytes-to-bytes stage applied to every payload at the
            SDK edge, e.g. :class:`worker.codec.AesGcmCodec` so that servers
            and databases only ever hold ciphertext.
    """

    payload_converter: PayloadConverter = dataclasses.field(default_factory=PayloadConverter)
    codec: PayloadCodec | None = None

    async def encode(self, values: Sequence[Any]) -> list[Payload]:
        payloads = self.payload_converter.to_payloads(values)
        if self.codec is not None:
            payloads = await self.codec.encode(payloads)
        return payloads

    async def decode(
        self, payloads: Sequence[Payload], type_hints: Sequence[Any] = ()
    ) -> list[Any]:
        if self.codec is not None:
            payloads = await self.codec.decode(payloads)
        return self.payload_converter.from_payloads(payloads, type_hints)
