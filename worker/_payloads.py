"""Applying a payload codec to every payload inside wire JSON.

Events, commands and tasks carry payloads at many depths (inputs, results,
failure details, heartbeat details). Rather than list every place, the walk
treats any JSON object with exactly the keys ``metadata`` and ``data`` as a
payload, gathers them all, and runs the codec once over the batch.
:func:`encode_wire` and :func:`decode_wire` do the same for whole bodies and
also hide (and restore) the text of the failures they hold.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Any

from worker._failure import (
    failure_chain,
    failures_in,
    hide_common_attributes,
    restore_common_attributes,
)
from worker.converter import DataConverter, PayloadCodec, PayloadConverter
from worker.errors import BatonError, PayloadDecryptionError, UnknownEncryptionKeyError
from worker.wire import Payload

_KEYS = frozenset({"metadata", "data"})


def is_payload(obj: Any) -> bool:
    """Whether a JSON value is a payload (an object of exactly ``metadata`` and ``data``)."""
    return (
        isinstance(obj, dict)
        and obj.keys() == _KEYS
        and isinstance(obj["data"], str)
        and isinstance(obj["metadata"], dict)
    )


def _collect(obj: Any, found: list[tuple[Any, Any]]) -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if is_payload(value):
                found.append((obj, key))
            else:
                _collect(value, found)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            if is_payload(value):
                found.append((obj, i))
            else:
                _collect(value, found)


async def transform(
    obj: Any, codec: PayloadCodec | None, *, encode: bool, keep_unreadable: bool = False
) -> Any:
    """Encode or decode, in place, every payload inside ``obj``; returns ``obj``.

    With ``keep_unreadable`` a payload the codec cannot decrypt (a key it
    does not hold, a key that does not match) is left as it came, encrypted,
    and the others are decoded: what a viewer shows, never what a worker runs.
    """
    if codec is None:
        return obj
    found: list[tuple[Any, Any]] = []
    _collect(obj, found)
    if not found:
        return obj
    payloads = [Payload.model_validate(parent[key]) for parent, key in found]
    unreadable = (UnknownEncryptionKeyError, PayloadDecryptionError)
    try:
        out = await (codec.encode(payloads) if encode else codec.decode(payloads))
    except unreadable:
        if encode or not keep_unreadable:
            raise
        out = []
        for payload in payloads:
            try:
                out.extend(await codec.decode([payload]))
            except unreadable:
                out.append(payload)
    for (parent, key), p in zip(found, out, strict=True):
        parent[key] = p.model_dump()
    return obj


async def encode_wire(obj: Any, converter: DataConverter) -> Any:
    """Make wire JSON ready to leave the process, in place; returns ``obj``.

    With a codec, failure messages and stack traces move into their
    ``encoded_attributes`` first, then every payload is encoded once. Call it
    once per body: encoding twice would encode the payloads twice.
    """
    if converter.codec is None:
        return obj
    for failure in failures_in(obj):
        hide_common_attributes(failure, converter.payload_converter)
    return await transform(obj, converter.codec, encode=True)


async def decode_wire(
    obj: Any, converter: DataConverter, *, hidden_text: bool = True, keep_unreadable: bool = False
) -> Any:
    """Decode wire JSON that arrived, in place: every payload, then failure text.

    ``hidden_text=False`` says no failure in ``obj`` has its text hidden
    (see :func:`may_hide_failure_text`): the walk looking for them is skipped.
    ``keep_unreadable`` leaves encrypted what the codec's keys cannot open
    (see :func:`transform`) instead of failing.
    """
    await transform(obj, converter.codec, encode=False, keep_unreadable=keep_unreadable)
    if hidden_text:
        for failure in failures_in(obj):
            restore_common_attributes(failure, converter.payload_converter)
    return obj


#: Events whose payloads never reach workflow code: a workflow task's failure
#: is what a worker reported, maybe one holding other keys (or a wrong key
#: under the right id) that failed for just that reason.
_NOT_REPLAYED = frozenset({"WorkflowTaskFailed"})
#: The failures a worker reports when its keys cannot open its task.
_KEY_ERROR_TYPES = frozenset({UnknownEncryptionKeyError.__name__, PayloadDecryptionError.__name__})


async def decode_events(
    events: list[dict[str, Any]], converter: DataConverter, *, hidden_text: bool = True
) -> list[dict[str, Any]]:
    """Decode a history's wire events in place, as a worker replays them.

    Like :func:`decode_wire`, except that what is only told, never decided
    on, is decoded as far as this worker's keys open it: a workflow task's
    failure, and the text (message and stack trace) of a failure a worker
    reported because its keys could not read its task, with the causes it
    holds. That worker wrote it under its own keys (a wrong key under the
    right id, say); a worker holding the right ones must still replay the
    run past it. Such text reads ``Encoded failure``, its type says what
    happened. Any other failure's text is what workflow code may decide on
    (``str(err.cause)``): like every other payload it must decode, or the
    workflow task fails and waits for a worker holding the key, as a worker
    that lacks a key just rotated in must not decide on ``Encoded failure``.
    """
    if converter.codec is None:
        await decode_wire(events, converter, hidden_text=hidden_text)
        return events
    told = [e for e in events if e.get("event_type") in _NOT_REPLAYED]
    decided = [e for e in events if e.get("event_type") not in _NOT_REPLAYED]
    texts: list[tuple[dict[str, Any], Any]] = []
    if hidden_text:
        for failure in failures_in(decided):
            key_error = False
            for f in failure_chain(failure):
                key_error = key_error or f.get("type") in _KEY_ERROR_TYPES
                if key_error and isinstance(f.get("encoded_attributes"), dict):
                    texts.append((f, f["encoded_attributes"]))
                    f["encoded_attributes"] = None
    raws = [raw for _, raw in texts]
    try:
        await transform(decided, converter.codec, encode=False)
        await transform(told, converter.codec, encode=False, keep_unreadable=True)
        await transform(raws, converter.codec, encode=False, keep_unreadable=True)
    finally:
        # each decoded (the list holds it now), or as it came
        for (f, _), raw in zip(texts, raws, strict=True):
            f["encoded_attributes"] = raw
    if hidden_text:
        for failure in failures_in(events):
            restore_common_attributes(failure, converter.payload_converter)
    return events


# A failure whose text a codec hid holds an object under this key; one whose
# text is plain holds null or nothing. Searching the raw body is far cheaper
# than walking every object of a long history. The server writes keys as
# they are (no escapes), and inside a JSON string the quotes are escaped, so
# text that merely mentions the key does not match.
_HIDDEN_TEXT = re.compile(rb'"encoded_attributes"\s*:\s*\{')


def may_hide_failure_text(raw: bytes) -> bool:
    """False if the JSON body ``raw`` holds no failure whose text a codec hid."""
    return _HIDDEN_TEXT.search(raw) is not None


def memo_values(memo: Mapping[str, Any] | None, converter: PayloadConverter) -> dict[str, Any]:
    """A run's memo as values: its payloads (the codec already undone) decoded,
    plain JSON entries (written by a client of an earlier release) as they are."""
    out = dict(memo or {})
    for key, value in out.items():
        if is_payload(value):
            with contextlib.suppress(BatonError, ValueError):
                out[key] = converter.from_payload(Payload.model_validate(value))
    return out


def memo_changes(updates: Mapping[str, Any], converter: PayloadConverter) -> dict[str, Any]:
    """A workflow's memo upsert as wire payloads (None, which removes a key, as it is).

    Raises:
        ValueError: ``updates`` is no mapping of named values, or one of its values
            cannot be encoded.
    """
    if not isinstance(updates, Mapping) or not updates:
        raise ValueError(f"a memo upsert is a non-empty mapping, got {updates!r}")
    changes: dict[str, Any] = {}
    for key, value in updates.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"a memo key is a non-empty string, got {key!r}")
        try:
            changes[key] = None if value is None else converter.to_payload(value).model_dump()
        except (BatonError, TypeError, ValueError) as exc:
            raise ValueError(f"memo value of {key!r}: {exc}") from exc
    return changes


def merged_memo(memo: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``memo`` with an upsert's ``changes`` applied: a None value removes its key."""
    out = dict(memo)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out
