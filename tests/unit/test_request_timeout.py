"""A server that accepts connections and never answers fails a call after the
request timeout (``request_timeout_s``, the CLI's ``--request-timeout``), not
after minutes; a wait the request asks for is not cut short by it."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ops.cli import cli
from worker import Client
from worker._http import Transport
from worker.errors import InvalidArgumentError


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback port whose backlog completes connections nobody ever reads."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def config_for(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "baton.toml"
    config.write_text(
        f'[regions."a"]\nurl = "{url}"\n'
        'dsn = "postgresql://postgres@127.0.0.1:9/a"\ninitial_version = 1\n'
    )
    return config


def test_the_cli_gives_up_on_a_silent_server_after_its_request_timeout(
    silent_url: str, tmp_path: Path
) -> None:
    config = config_for(tmp_path, silent_url)
    began = time.monotonic()
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "--request-timeout", "1", "workflow", "list", "-o", "json"],
    )
    # the transport's own limit is 150 s: well past it would mean it was not applied
    assert time.monotonic() - began < 60
    assert result.exit_code == 1, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "UNAVAILABLE"
    assert "did not answer within 1 s" in error["message"]
    assert "--request-timeout" in error["message"]


def test_the_request_timeout_comes_from_the_environment_too(
    silent_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATON_REQUEST_TIMEOUT", "1.5")
    config = config_for(tmp_path, silent_url)
    result = CliRunner().invoke(cli, ["--config", str(config), "workflow", "describe", "w"])
    assert result.exit_code == 1, result.output
    assert "[UNAVAILABLE]" in result.stderr
    assert "within 1.5 s" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "soon"])
def test_a_request_timeout_that_is_no_positive_finite_number_is_a_usage_error(bad: str) -> None:
    result = CliRunner().invoke(cli, ["--request-timeout", bad, "workflow", "list"])
    assert result.exit_code == 2, result.output
    assert "--request-timeout" in result.output


async def test_a_wait_the_request_asks_for_is_added_to_the_request_timeout() -> None:
    """A long poll answered after its ``wait_s`` is not a hung server."""

    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(2.0)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(late, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    transport = Transport([url], retry_for_s=0, request_timeout_s=1.0)
    try:
        assert await transport.call("GET", "/api/v1/x", params={"wait_s": 5}) == {}
        with pytest.raises(Exception, match="did not answer within 1 s"):
            await transport.call("GET", "/api/v1/x")
    finally:
        await transport.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
async def test_a_request_timeout_must_be_a_positive_finite_number(bad: float) -> None:
    with pytest.raises(InvalidArgumentError, match="request_timeout_s"):
        await Client.connect("http://127.0.0.1:9", request_timeout_s=bad)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "60", True])
async def test_a_retry_budget_must_be_a_finite_number(bad: object) -> None:
    # A NaN budget retried a server that cannot be reached for ever.
    with pytest.raises(InvalidArgumentError, match="retry_for_s"):
        await Client.connect("http://127.0.0.1:9", retry_for_s=bad)  # type: ignore[arg-type]


async def test_a_silent_endpoint_does_not_keep_a_call_from_the_next_one(silent_url: str) -> None:
    """A hung standby listed first: its timeout outlasts the retry budget, yet
    the endpoint that answers is still asked (and stays the one asked)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    transport = Transport([silent_url, url], retry_for_s=0.2, request_timeout_s=1.0)
    try:
        assert await transport.call("GET", "/api/v1/x") == {}
        assert transport.active_endpoint == url
    finally:
        await transport.close()
        server.close()
        await server.wait_closed()


@pytest.fixture
def unanswered_url() -> Iterator[str]:
    """A loopback port whose full backlog drops connection attempts unanswered
    (as a host that is down or a firewall that drops packets does)."""
    with socket.socket() as sock, socket.socket() as filler:
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        filler.connect(sock.getsockname())
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("credentials", ["", "user:secret@"], ids=["lean", "aiohttp"])
async def test_a_connection_not_made_is_unreachable_not_a_hung_server(
    unanswered_url: str, credentials: str
) -> None:
    """It was reported as a server that took the request and did not answer
    within the request timeout (150 s) when the connect gave up after 5 s."""
    url = unanswered_url.replace("//", "//" + credentials)
    transport = Transport([url], retry_for_s=0, request_timeout_s=150.0)
    began = time.monotonic()
    try:
        with pytest.raises(Exception, match="cannot reach") as caught:
            await transport.call("GET", "/api/v1/x")
    finally:
        await transport.close()
    assert time.monotonic() - began < 10
    assert "no connection within 5 s" in str(caught.value)
    assert "150" not in str(caught.value)
