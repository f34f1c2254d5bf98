"""Creating a namespace: its row lands in its active region, never in a region it is not of."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from ops.pg import PgCluster
from store.config import BatonConfig, load_config
from tests.conftest import fresh_database, serve_region
from tests.helpers import baton_json, free_port, write_config
from worker import Client
from worker.errors import (
    InvalidArgumentError,
    NamespaceAlreadyExistsError,
    NamespaceNotActiveError,
)

pytestmark = pytest.mark.integration


class Two:
    def __init__(self, pg: PgCluster, config: BatonConfig, path: Path, dbs: dict[str, str]):
        self.pg, self.config, self.path, self.dbs = pg, config, path, dbs

    def url(self, region: str) -> str:
        return self.config.regions[region].url

    def held(self, region: str, name: str) -> list[str]:
        """The namespace's regions as ``region``'s database holds them ([] if not at all)."""
        out = self.pg.psql(
            self.dbs[region],
            f"SELECT array_to_string(regions, ',') FROM namespaces WHERE name = '{name}'",
        )
        text = out.strip()
        return text.split(",") if text else []


@pytest.fixture
async def two(pg: PgCluster, template_db: str, tmp_path: Path) -> AsyncIterator[Two]:
    """Two regions served in this process (no replication: only where rows are written counts)."""
    dbs = {r: fresh_database(pg, template_db) for r in ("region-a", "region-b")}
    path = write_config(
        tmp_path / "baton.toml", {r: (free_port(), pg.dsn(db)) for r, db in dbs.items()}
    )
    config = load_config(path)
    async with contextlib.AsyncExitStack() as stack:
        for r in dbs:
            await stack.enter_async_context(serve_region(config, r))
        yield Two(pg, config, path, dbs)


async def test_a_namespace_of_other_regions_is_created_in_its_active_region(two: Two) -> None:
    async with await Client.connect(two.url("region-a"), namespace="ghost") as client:
        ns = await client.create_namespace("ghost", regions=["region-b"])
        assert ns["active_region"] == "region-b" and ns["regions"] == ["region-b"]
        assert two.held("region-b", "ghost") == ["region-b"]
        assert two.held("region-a", "ghost") == []
        with pytest.raises(NamespaceAlreadyExistsError):
            await client.create_namespace("ghost", regions=["region-b"])
        # several regions, another active: written in the active one only (the
        # rest reaches the others through its outbox)
        ns = await client.create_namespace(
            "both", regions=["region-a", "region-b"], active_region="region-b"
        )
        assert ns["active_region"] == "region-b"
        assert two.held("region-b", "both") == ["region-a", "region-b"]
        assert two.held("region-a", "both") == []


async def test_a_client_that_does_not_follow_failover_stays_in_its_region(two: Two) -> None:
    """``follow_failover=False`` (each server's system worker): the answer that
    names the active region is raised, and no call goes there."""
    async with await Client.connect(
        two.url("region-a"), namespace="ghost", follow_failover=False
    ) as client:
        with pytest.raises(NamespaceNotActiveError) as caught:
            await client.create_namespace("ghost", regions=["region-b"])
        assert caught.value.details["active_url"].rstrip("/") == two.url("region-b")
        assert client.transport.endpoints == [two.url("region-a")]
    assert two.held("region-b", "ghost") == []


async def test_the_api_of_a_region_not_active_names_the_region_to_send_the_create_to(
    two: Two,
) -> None:
    async with httpx.AsyncClient(base_url=two.url("region-a"), timeout=10) as http:
        resp = await http.post(
            "/api/v1/namespaces", json={"name": "ghost", "regions": ["region-b"]}
        )
    assert resp.status_code == 421, resp.text
    err = resp.json()["error"]
    assert err["code"] == "NAMESPACE_NOT_ACTIVE"
    assert err["details"] == {"active_region": "region-b", "active_url": two.url("region-b")}
    assert two.url("region-b") in err["message"]
    assert two.held("region-a", "ghost") == [] and two.held("region-b", "ghost") == []


async def test_the_cli_creates_a_namespace_whose_regions_leave_out_the_first(two: Two) -> None:
    code, ns, err = await baton_json(
        two.path, "namespace", "create", "ghost3", "--regions", "region-b"
    )
    assert code == 0, err
    assert ns["active_region"] == "region-b"
    assert two.held("region-b", "ghost3") == ["region-b"]
    assert two.held("region-a", "ghost3") == []
    code, ns, err = await baton_json(
        two.path, "namespace", "describe", "ghost3", namespace="ghost3"
    )
    assert code == 0 and ns["name"] == "ghost3", err
    code, every, err = await baton_json(two.path, "namespace", "list")
    assert code == 0 and "ghost3" in {n["name"] for n in every}, err
    # --region after the command, as the README writes it, or before it
    for args in (
        ["namespace", "list", "--region", "region-a"],
        ["--region", "region-a", "namespace", "list"],
    ):
        code, in_a, err = await baton_json(two.path, *args)
        assert code == 0 and "ghost3" not in {n["name"] for n in in_a}, err
    code, failed, err = await baton_json(two.path, "namespace", "list", "--region", "region-z")
    # a region the config does not have: a usage error (exit 2)
    assert code == 2 and failed["error"]["code"] == "INVALID_ARGUMENT", err


@pytest.mark.parametrize(
    "regions",
    [["region-a", "region-a"], ["region-a", "region-b", "region-a"], ["region-a", "region-z"]],
)
async def test_repeated_or_unknown_regions_are_refused_and_nothing_is_stored(
    two: Two, regions: list[str]
) -> None:
    async with await Client.connect(two.url("region-a"), namespace="bad") as client:
        with pytest.raises(InvalidArgumentError) as caught:
            await client.create_namespace("bad", regions=regions)
    assert ("more than once" in caught.value.message) or ("region-z" in caught.value.message)
    async with httpx.AsyncClient(base_url=two.url("region-a"), timeout=10) as http:
        resp = await http.post("/api/v1/namespaces", json={"name": "bad", "regions": regions})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "INVALID_ARGUMENT"
    code, out, err = await baton_json(
        two.path, "namespace", "create", "bad", "--regions", ",".join(regions)
    )
    # refused by the CLI as the server would, before sending: a usage error (exit 2)
    assert code == 2 and out["error"]["code"] == "INVALID_ARGUMENT", err
    assert "Traceback" not in err
    for region in ("region-a", "region-b"):
        assert two.held(region, "bad") == []


@pytest.mark.parametrize("name", ["bad name", "-dash-first", "x\n", "ü", "a" * 201, ""])
async def test_a_bad_name_is_refused_with_what_a_name_may_hold(two: Two, name: str) -> None:
    async with await Client.connect(two.url("region-a"), namespace="default") as client:
        with pytest.raises(InvalidArgumentError) as caught:
            await client.create_namespace(name)
    message = caught.value.message
    assert "is not a namespace name" in message
    assert "letters, digits, '.', '_' and '-'" in message
    assert "pattern" not in message  # words, not a regular expression
    async with httpx.AsyncClient(base_url=two.url("region-a"), timeout=10) as http:
        resp = await http.get("/api/v1/namespaces")
    assert resp.json() == []  # nothing stored
    if name and not name.startswith("-"):
        # describing it: the CLI (the SDK) refuses it before it is sent
        code, out, err = await baton_json(two.path, "namespace", "describe", name)
        assert code == 1 and out["error"]["code"] == "INVALID_ARGUMENT", err
        assert "letters, digits, '.', '_' and '-'" in out["error"]["message"]
        # and the server, asked anyway: not found, no create suggested that would be refused
        async with httpx.AsyncClient(base_url=two.url("region-a"), timeout=10) as http:
            resp = await http.get(f"/api/v1/namespaces/{quote(name, safe='')}")
        error = resp.json()["error"]
        assert resp.status_code == 404 and error["code"] == "NAMESPACE_NOT_FOUND", error
        assert "baton namespace create" not in error["message"]
        assert "no namespace can have that name" in error["message"]


class DropFirstAnswer:
    """A loopback proxy in front of a server that forwards every request and
    drops the connection instead of the first answer: the server did the work,
    the client never heard (an answer lost to a dropped connection)."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.answers_dropped = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])  # type: ignore[index]
                up_writer.write(head + await reader.readexactly(length))
                answer = await up_reader.readuntil(b"\r\n\r\n")
                size = int(re.search(rb"(?i)content-length: *(\d+)", answer)[1])  # type: ignore[index]
                answer += await up_reader.readexactly(size)
                if self.answers_dropped == 0:
                    self.answers_dropped += 1
                    return
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()
            up_writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_a_create_whose_answer_was_lost_is_retried_to_the_namespace_it_made(
    two: Two,
) -> None:
    proxy = DropFirstAnswer(int(two.url("region-a").rsplit(":", 1)[1]))
    url = await proxy.start()
    try:
        async with await Client.connect(url, namespace="orders") as client:
            # the SDK retries a dropped connection; the retry finds the namespace
            # its first try made, and answers with it
            ns = await client.create_namespace("orders", description="made once")
            assert proxy.answers_dropped == 1
            assert ns["name"] == "orders" and ns["description"] == "made once"
            # any other create of the name is refused, as before
            with pytest.raises(NamespaceAlreadyExistsError, match="exists already"):
                await client.create_namespace("orders", description="made twice")
    finally:
        await proxy.stop()
    assert two.held("region-a", "orders") == ["region-a"]
    async with httpx.AsyncClient(base_url=two.url("region-a")) as http:
        body = {"name": "orders", "request_id": "other"}
        r = await http.post("/api/v1/namespaces", json=body)
        assert r.status_code == 409 and r.json()["error"]["code"] == "NAMESPACE_ALREADY_EXISTS"
