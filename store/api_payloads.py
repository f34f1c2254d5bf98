"""How the API checks the payloads of a request before a route sees it: each
payload's data is base64 and within the server's payload limit, and failure
text is within it too, so nothing a worker could never decode is stored."""

from __future__ import annotations

import binascii
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from store.errors import InvalidArgument, PayloadTooLarge
from worker import wire


def _memo_size(memo: dict[str, Any]) -> int:
    """A memo's bytes: a payload value's data as decoded, any other value as JSON."""
    size = 0
    for key, value in memo.items():
        size += len(key.encode())
        if isinstance(value, wire.Payload):
            size += len(value.data) * 3 // 4
        elif isinstance(value, dict) and isinstance(value.get("data"), str):
            size += len(value["data"]) * 3 // 4
        else:
            size += len(orjson.dumps(value))
    return size


def _check_memo(memo: Any, limit: int, where: str) -> None:
    # A memo is stored in its run's row and travels in each of its replication
    # messages: as a whole it is held to the payload limit (as Temporal holds
    # it to its blob size limit), where one of plain JSON values passed unbounded.
    if isinstance(memo, dict) and (size := _memo_size(memo)) > limit:
        raise PayloadTooLarge(
            f"{where} (a memo) is {size} bytes in all, over this server's limit of {limit} "
            "bytes: keep a memo small (store large data elsewhere and put a reference in it)",
            size=size,
            limit=limit,
        )


def walk_payload_sizes(obj: Any, limit: int, where: str) -> None:
    """Refuse a request whose payloads are not base64 or over ``limit`` bytes,
    or whose failure text is over it, naming where in the request."""
    if isinstance(obj, wire.Payload):
        size = len(obj.data) * 3 // 4
        try:
            # stored as sent, it would fail every worker that decodes it, for good
            binascii.a2b_base64(obj.data, strict_mode=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument(
                f"payload in {where}: data is not base64; encode the payload's bytes as "
                "standard, padded base64 (RFC 4648)"
            ) from None
        if size > limit:
            raise PayloadTooLarge(
                f"payload in {where} is {size} bytes, over this server's limit of {limit} bytes: "
                "store large data elsewhere and pass a reference",
                size=size,
                limit=limit,
            )
    elif isinstance(obj, wire.Failure) and len(obj.message) + len(obj.stack_trace) > limit:
        raise PayloadTooLarge(
            f"failure text in {where} is over this server's limit of {limit} bytes: "
            "keep messages and stack traces short",
            limit=limit,
        )
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            # the path to the payload, as `memo['m']` or `commands[0].attributes['input'][1]`
            field = name if where == "request" else f"{where}.{name}"
            walk_payload_sizes(getattr(obj, name), limit, field)
            if name == "memo":  # after its entries, so that one over is named
                _check_memo(getattr(obj, name), limit, field)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            walk_payload_sizes(item, limit, f"{where}[{i}]")
    elif isinstance(obj, dict):
        if "data" in obj and "metadata" in obj and isinstance(obj["data"], str):
            try:
                payload = wire.Payload.model_validate(obj)
            except ValidationError:
                raise InvalidArgument(
                    f"{where}: a payload needs metadata (an object of strings) and data "
                    "(base64 text)"
                ) from None
            walk_payload_sizes(payload, limit, where)
        elif isinstance(obj.get("message"), str) and "type" in obj:
            text = len(obj["message"]) + len(str(obj.get("stack_trace") or ""))
            if text > limit:
                raise PayloadTooLarge(
                    f"failure text in {where} is over this server's limit of {limit} bytes: "
                    "keep messages and stack traces short",
                    limit=limit,
                )
            for key, item in obj.items():
                walk_payload_sizes(item, limit, f"{where}[{key!r}]")
        else:
            for key, item in obj.items():
                walk_payload_sizes(item, limit, f"{where}[{key!r}]")
                if key == "memo":
                    _check_memo(item, limit, f"{where}[{key!r}]")
