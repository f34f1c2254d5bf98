"""Task tokens and the namespace write check (store/mutable_state.py), without a database."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import orjson
import pytest

from store.errors import NamespaceInHandover, NamespaceNotActive, TaskNotFound
from store.namespaces import Namespace
from store.task_token import TaskToken
from worker.wire import ErrorCode

RUN_ID = str(uuid.UUID("0b8f4c8e-3c1a-4d8e-9a51-2f6f1d0c7e11"))
URLS = {"region-a": "http://127.0.0.1:17233", "region-b": "http://127.0.0.1:17234"}


def token(**overrides: Any) -> TaskToken:
    fields: dict[str, Any] = {
        "kind": "act",
        "namespace": "orders",
        "workflow_id": "order-42",
        "run_id": RUN_ID,
        "ref": "7",
        "attempt": 3,
        "version": 1,
    }
    fields.update(overrides)
    return TaskToken(**fields)


def raw_token(items: Any) -> str:
    """A token as the server would spell it, around arbitrary JSON."""
    return base64.urlsafe_b64encode(orjson.dumps(items)).decode().rstrip("=")


def assert_task_not_found(
    tok: str, *, kind: str = "act", namespace: str = "orders"
) -> TaskNotFound:
    with pytest.raises(TaskNotFound) as exc:
        TaskToken.decode(tok, kind=kind, namespace=namespace)
    assert exc.value.code == ErrorCode.TASK_NOT_FOUND
    assert exc.value.code.value == "TASK_NOT_FOUND"
    assert exc.value.http_status == 404
    assert not exc.value.retryable
    return exc.value


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize(
    "tok",
    [
        token(),
        token(kind="wf", ref="12", attempt=14),
        token(kind="query", ref=str(uuid.uuid4()), attempt=0),
        token(workflow_id="with spaces/slashes?&=é", namespace="ns-ü"),
    ],
)
def test_round_trip(tok: TaskToken) -> None:
    encoded = tok.encode()
    assert TaskToken.decode(encoded, kind=tok.kind, namespace=tok.namespace) == tok


def test_encoded_token_is_url_safe_and_unpadded() -> None:
    for wid in ["a", "ab", "abc", "~~~???>>>"]:
        encoded = token(workflow_id=wid).encode()
        assert "=" not in encoded
        assert "+" not in encoded and "/" not in encoded
        assert encoded.isascii()


def test_distinct_attempts_give_distinct_tokens() -> None:
    assert token(attempt=1).encode() != token(attempt=2).encode()


def test_distinct_failover_versions_give_distinct_tokens() -> None:
    # The same task ids reached again in another region after a failover.
    assert token(version=1).encode() != token(version=2).encode()


# --------------------------------------------------------------------------- bad tokens


@pytest.mark.parametrize(
    "tok",
    [
        "",
        "garbage",
        "not a token at all!",
        "%%%%",
        "é",
        base64.urlsafe_b64encode(b"\xff\xfe\x00binary").decode(),
    ],
)
def test_garbage_is_task_not_found(tok: str) -> None:
    err = assert_task_not_found(tok)
    assert "not one this server issued" in err.message


@pytest.mark.parametrize("cut", [1, 2, 5, 10])
def test_truncated_token_is_task_not_found(cut: int) -> None:
    assert_task_not_found(token().encode()[:-cut])


@pytest.mark.parametrize("run_id", ["not-a-uuid", "", "1234", RUN_ID[:-1]])
def test_non_uuid_run_id_is_task_not_found(run_id: str) -> None:
    assert_task_not_found(token(run_id=run_id).encode())


@pytest.mark.parametrize(
    "items",
    [
        ["act", "orders", "order-42", RUN_ID, "7"],  # too few fields
        ["act", "orders", "order-42", RUN_ID, "7", 3],  # no failover version
        ["act", "orders", "order-42", RUN_ID, "7", 3, 1, "extra"],
        ["act", "orders", "order-42", RUN_ID, "7", 3, "one"],
        ["act", "orders", "order-42", RUN_ID, "7", "three", 1],
        ["act", "orders", "order-42", RUN_ID, "7", None, 1],
        {"kind": "act"},
        42,
        None,
        "a string",
    ],
)
def test_wrong_shape_is_task_not_found(items: Any) -> None:
    assert_task_not_found(raw_token(items))


@pytest.mark.parametrize("run_id", [123, None, [RUN_ID], {"id": RUN_ID}, 1.5])
def test_non_string_run_id_is_task_not_found(run_id: Any) -> None:
    # A client can send any bytes as a token; a run id of the wrong JSON type
    # must still read as "not a token we issued", not as an internal error.
    assert_task_not_found(raw_token(["act", "orders", "order-42", run_id, "7", 3, 1]))


def test_wrong_kind_is_task_not_found() -> None:
    err = assert_task_not_found(token(kind="wf").encode(), kind="act")
    assert "wf task" in err.message and "act task" in err.message


def test_wrong_namespace_is_task_not_found() -> None:
    err = assert_task_not_found(token(namespace="billing").encode(), namespace="orders")
    assert "'billing'" in err.message and "'orders'" in err.message


# --------------------------------------------------------------------------- require_writable


def namespace(active: str = "region-a", state: str = "active") -> Namespace:
    return Namespace(
        name="orders",
        regions=["region-a", "region-b"],
        active_region=active,
        failover_version=1,
        state=state,
        retention_days=7,
        description="",
    )


def test_active_region_may_write() -> None:
    namespace().require_writable("region-a", URLS)  # does not raise


def test_standby_region_names_the_active_region_and_its_url() -> None:
    with pytest.raises(NamespaceNotActive) as exc:
        namespace(active="region-b").require_writable("region-a", URLS)
    err = exc.value
    assert err.code == ErrorCode.NAMESPACE_NOT_ACTIVE
    assert err.details == {"active_region": "region-b", "active_url": "http://127.0.0.1:17234"}
    assert "region-b" in err.message and "http://127.0.0.1:17234" in err.message
    assert "'orders'" in err.message
    assert not err.retryable


def test_standby_region_without_a_known_url() -> None:
    with pytest.raises(NamespaceNotActive) as exc:
        namespace(active="region-c").require_writable("region-a", URLS)
    assert exc.value.details == {"active_region": "region-c", "active_url": None}
    assert "region-c" in exc.value.message


def test_handover_is_retryable() -> None:
    with pytest.raises(NamespaceInHandover) as exc:
        namespace(state="handover").require_writable("region-a", URLS)
    err = exc.value
    assert err.retryable
    assert err.code == ErrorCode.NAMESPACE_IN_HANDOVER
    assert err.http_status == 503
    assert err.details == {"active_region": "region-a"}
    assert "'orders'" in err.message


def test_namespace_from_row() -> None:
    row = {
        "name": "orders",
        "regions": ("region-a", "region-b"),
        "active_region": "region-a",
        "failover_version": 101,
        "state": "active",
        "retention_days": 3,
        "description": "d",
    }
    ns = Namespace.from_row(row)
    assert ns.regions == ["region-a", "region-b"]
    assert ns.failover_version == 101
    ns.require_writable("region-a", URLS)


# --------------------------------------------------------------------------- failover version


def test_a_token_from_before_a_failover_is_task_not_found() -> None:
    ns = Namespace(
        name="orders",
        regions=["region-a", "region-b"],
        active_region="region-b",
        failover_version=2,
        state="active",
        retention_days=7,
        description="",
    )
    token(version=2).check_version(ns)  # handed out here, after the failover
    with pytest.raises(TaskNotFound) as exc:
        token(version=1).check_version(ns)
    assert "failover version 1" in exc.value.message and "version 2" in exc.value.message
    assert not exc.value.retryable
