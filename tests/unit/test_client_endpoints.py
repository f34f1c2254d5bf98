"""What Client.connect makes of the endpoints it is given, before any call."""

from __future__ import annotations

import time

import pytest

from worker import Client
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
    client = await Client.connect([" http://127.0.0.1:7233/", "https://baton.example:443"])
    assert client.transport.endpoints == ["http://127.0.0.1:7233", "https://baton.example:443"]
    await client.close()
