"""The note a command prints when what it shows holds payloads it cannot decrypt.

A describe, history or list shows a payload its keys cannot open as the
ciphertext it is (``<binary/encrypted payload, N bytes>`` in a table), and
goes on. That reads the same whether no keys were given, the payload's key id
is not among them, or a key of that id is not the one it was encrypted with
(a typo in the key, a rotation gone wrong). The note on stderr says which,
naming the key ids, so the output on stdout stays as it was.
"""

from __future__ import annotations

from typing import Any

from worker.codec import BINARY_ENCRYPTED, KEY_ENV_VAR, KEY_ID
from worker.converter import DataConverter
from worker.errors import PayloadDecryptionError, UnknownEncryptionKeyError
from worker.wire import Payload


def encrypted_payloads(data: Any) -> list[dict[str, Any]]:
    """The encrypted payloads (``{"metadata", "data"}`` dicts) anywhere in ``data``."""
    found: list[dict[str, Any]] = []
    seen: set[int] = set()  # one value may be shown twice (a result, and the answer holding it)
    stack = [data]
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, dict):
            meta = x.get("metadata")
            if (
                isinstance(meta, dict)
                and meta.get("encoding") == BINARY_ENCRYPTED
                and isinstance(x.get("data"), str)
            ):
                found.append(x)
                continue
            stack.extend(x.values())
        elif isinstance(x, list | tuple):
            stack.extend(x)
    return found


async def unreadable_note(data: Any, converter: DataConverter | None) -> str | None:
    """What to tell of the payloads in ``data`` that ``converter``'s keys do not
    open; None when there are none (those the keys open but the command shows
    as they are stored, a schedule's input say, need no note)."""
    found = encrypted_payloads(data)
    if not found:
        return None
    if converter is None or converter.codec is None:
        kids = sorted({str(p["metadata"].get(KEY_ID) or "?") for p in found})
        return (
            f"note: {len(found)} payload(s) shown are encrypted (key id {', '.join(kids)}) and "
            f"{KEY_ENV_VAR} is not set: set it (KID:BASE64KEY,...) to read them"
        )
    n, reasons = 0, dict[str, None]()  # the reasons in order, once each
    for p in found:
        try:
            await converter.codec.decode([Payload.model_validate(p)])
        except (UnknownEncryptionKeyError, PayloadDecryptionError) as exc:
            n += 1
            reasons[str(exc)] = None
        except Exception:  # not a key's doing: shown as it is, with no note
            continue
    if not n:
        return None
    return (
        f"note: {n} payload(s) shown stay encrypted: the keys of {KEY_ENV_VAR} do not "
        f"open them ({'; '.join(reasons)})"
    )
