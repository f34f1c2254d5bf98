"""Task tokens: what a poll hands a worker, and what names the task when it answers."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass

import orjson

from store.errors import TaskNotFound
from store.namespaces import Namespace


@dataclass(frozen=True)
class TaskToken:
    """What a task token names: one attempt of one task of one run."""

    kind: str  # "wf", "act" or "query"
    namespace: str
    workflow_id: str
    run_id: str
    ref: str  # workflow: scheduled event id; activity: scheduled event id; query: query id
    attempt: int  # workflow: started event id; activity: attempt
    # The namespace's failover version when the task was handed out. After a
    # failover the new region may reach the same event ids and attempts, so a
    # token from the old region's worker must not match its tasks.
    version: int = 0

    def encode(self) -> str:
        raw = orjson.dumps(
            [
                self.kind,
                self.namespace,
                self.workflow_id,
                self.run_id,
                self.ref,
                self.attempt,
                self.version,
            ]
        )
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, *, kind: str, namespace: str) -> TaskToken:
        try:
            padded = token + "=" * (-len(token) % 4)
            k, ns, wid, rid, ref, attempt, version = orjson.loads(base64.urlsafe_b64decode(padded))
            uuid.UUID(rid)
            parsed = cls(str(k), str(ns), str(wid), str(rid), str(ref), int(attempt), int(version))
        except (ValueError, TypeError, AttributeError, binascii.Error, orjson.JSONDecodeError):
            raise TaskNotFound(
                "task token is not one this server issued: pass the token from the poll response "
                "unchanged"
            ) from None
        if parsed.kind != kind or parsed.namespace != namespace:
            raise TaskNotFound(
                f"task token is for a {parsed.kind} task in namespace {parsed.namespace!r}, "
                f"not a {kind} task in {namespace!r}"
            )
        return parsed

    def check_version(self, ns: Namespace) -> None:
        """Refuse a token handed out before the namespace last failed over."""
        if self.version != ns.failover_version:
            raise TaskNotFound(
                f"task token was handed out under failover version {self.version}; namespace "
                f"{ns.name!r} has since failed over (version {ns.failover_version}) and the task "
                "was scheduled anew: the worker should drop it"
            )
