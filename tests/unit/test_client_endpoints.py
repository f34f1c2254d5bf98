"""What the client refuses before any call: endpoints, namespaces and ids it cannot use."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from worker import Client
from worker._http import Transport
from worker.errors import InvalidArgumentError


@pytest.mark.parametrize(
    "endpoint",
    ["127.0.0.1:7233", "", "not a url", "ftp://127.0.0.1:7233", "http://127.0.0.1:99999"],
)
async def test_an_endpoint_that_is_no_http_url_is_refused_at_once(endpoint: str) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidArgumentError, match="http://HOST:PORT") as err:
        client = await Client.connect(["http://127.0.0.1:7233", endpoint], retry_for_s=30)
        await client.list_namespaces()
    assert err.value.code == "INVALID_ARGUMENT"
    assert time.monotonic() - started < 1


async def test_no_endpoint_at_all_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="at least one"):
        await Client.connect([])


async def test_endpoints_keep_their_form_without_a_trailing_slash() -> None:
    client = await Client.connect(
        [" http://127.0.0.1:7233/", "https://baton.example:443"], lazy=True
    )
    assert client.transport.endpoints == ["http://127.0.0.1:7233", "https://baton.example:443"]
    await client.close()


@pytest.mark.parametrize(("namespace", "workflow_id"), [("", "order-1"), ("default", "")])
async def test_an_empty_namespace_or_workflow_id_is_refused_before_a_call(
    namespace: str, workflow_id: str
) -> None:
    # nothing listens there: a call that went out would retry, not fail at once
    async with await Client.connect(
        "http://127.0.0.1:9", namespace=namespace, retry_for_s=1, lazy=True
    ) as client:
        handle = client.get_workflow_handle(workflow_id)
        with pytest.raises(InvalidArgumentError, match="non-empty string"):
            await handle.describe()
        with pytest.raises(InvalidArgumentError, match="non-empty string"):
            await handle.signal("approve")


async def test_a_workflow_id_that_is_no_string_is_refused() -> None:
    async with await Client.connect("http://127.0.0.1:9", retry_for_s=1, lazy=True) as client:
        with pytest.raises(InvalidArgumentError, match="workflow id"):
            await client.get_workflow_handle(42).result()  # type: ignore[arg-type]


@pytest.mark.parametrize("blank", ["", "  "])
async def test_a_blank_run_id_is_refused_when_the_handle_is_made(blank: str) -> None:
    """Regression: the handle was pinned to the blank run id, and every later call
    sent it and was answered "run id '' is not a UUID", naming no argument."""
    async with await Client.connect("http://127.0.0.1:9", retry_for_s=1, lazy=True) as client:
        with pytest.raises(InvalidArgumentError) as caught:
            client.get_workflow_handle("order-1", run_id=blank)
    message = str(caught.value)
    assert "run_id" in message and "non-empty run id" in message, message
    assert "leave run_id out" in message, message
    assert caught.value.details["argument"] == "run_id"


@pytest.mark.parametrize("argument", ["retry_for_s", "request_timeout_s"])
@pytest.mark.parametrize("flag", [True, False])
async def test_a_bool_is_no_number_of_seconds(argument: str, flag: bool) -> None:
    """Regression: ``request_timeout_s=True`` passed the number check and was taken as 1 s."""
    with pytest.raises(InvalidArgumentError, match=f"{argument} must be a finite number"):
        Transport(["http://127.0.0.1:9"], **{argument: flag})
    with pytest.raises(InvalidArgumentError, match=f"{argument} must be a finite number"):
        await Client.connect("http://127.0.0.1:9", lazy=True, **{argument: flag})


async def test_a_blank_namespace_of_a_search_attribute_call_is_no_default() -> None:
    """Regression: namespace="" (an unset variable) acted on the client's namespace."""
    async with await Client.connect(
        "http://127.0.0.1:9", namespace="default", retry_for_s=1, lazy=True
    ) as client:
        with pytest.raises(InvalidArgumentError, match="non-empty string"):
            await client.add_search_attribute("Team", "Keyword", namespace="")
        with pytest.raises(InvalidArgumentError, match="non-empty string"):
            await client.remove_search_attribute("Team", namespace="")
        with pytest.raises(InvalidArgumentError, match="non-empty string"):
            await client.list_search_attributes(namespace="")


async def test_a_value_json_cannot_carry_is_named_by_its_memo_key_or_argument() -> None:
    """Regression: a memo value or an argument JSON cannot carry was named
    `value...` (or, for a huge integer, not at all), not by where it is."""
    async with await Client.connect("http://127.0.0.1:9", retry_for_s=1, lazy=True) as client:
        start = client.start_workflow
        cases: list[tuple[Callable[[], Awaitable[Any]], str]] = [
            (
                lambda: start("W", 1, id="w", task_queue="q", memo={"a": {"b": math.inf}}),
                "memo['a']['b'] is a float JSON cannot carry",
            ),
            (
                lambda: start("W", 1, id="w", task_queue="q", memo={"ok": 1, "n": [2**70]}),
                "memo['n'][0] is an integer past 64 bits",
            ),
            (
                lambda: start("W", 1, math.nan, id="w", task_queue="q"),
                "argument 2 is a float JSON cannot carry",
            ),
            (
                lambda: client.get_workflow_handle("w").signal("s", {"x": 2**64}),
                "argument 1['x'] is an integer past 64 bits",
            ),
        ]
        for call, message in cases:
            with pytest.raises(InvalidArgumentError) as caught:
                await call()
            assert message in str(caught.value), caught.value
