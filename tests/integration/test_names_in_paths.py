"""Names that travel in a request's path: a namespace name the server would
never accept is refused before it is sent, and any workflow id works end to end."""

from __future__ import annotations

import pytest

from tests.apps.workflows import Counter
from tests.conftest import Region
from tests.helpers import baton_json
from worker import Client, Worker
from worker.errors import InvalidArgumentError

pytestmark = pytest.mark.integration
QUEUE = "names-in-paths"
BAD_NAMESPACES = ["a/b", "a?b", "a#b", "a b", "..", "-x", "a%2Fb"]


@pytest.mark.parametrize("name", BAD_NAMESPACES)
async def test_a_namespace_name_the_server_never_accepts_is_refused_by_the_sdk(
    region: Region, name: str
) -> None:
    async with await Client.connect(region.url, namespace=name, retry_for_s=2) as c:
        with pytest.raises(InvalidArgumentError) as caught:
            await c.get_workflow_handle("w").describe()
        assert "letters, digits" in caught.value.message, caught.value.message
        with pytest.raises(InvalidArgumentError):
            await c.start_workflow(Counter, id="w", task_queue=QUEUE)
    async with await Client.connect(region.url, retry_for_s=2) as c:
        with pytest.raises(InvalidArgumentError):
            await c.describe_namespace(name)


async def test_a_namespace_name_the_server_never_accepts_is_refused_by_the_cli(
    region: Region,
) -> None:
    for name in ("a/b", "a?b"):
        for args in (("workflow", "describe", "w"), ("namespace", "describe", name)):
            code, out, err = await baton_json(region.config_path, *args, namespace=name)
            assert code == 1 and out["error"]["code"] == "INVALID_ARGUMENT", (name, out, err)
            assert "letters, digits" in out["error"]["message"], out


@pytest.mark.parametrize(
    "wid",
    ["a/b", "a?b", "a#b", "a/b/result", "a%2Fb", "a b", "ü/ß", "/", ".", "..", "a/../b", "./x"],
)
async def test_any_workflow_id_works_end_to_end(client: Client, region: Region, wid: str) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Counter]):
        h = await client.start_workflow(Counter, id=wid, task_queue=QUEUE)
        assert (await h.describe())["execution"]["workflow_id"] == wid
        assert await h.update("add", 2) == 2
        assert await h.query("current") == 2
        await h.signal("finish")
        assert await h.result(timeout=20) == 2
        assert (await h.history())[0]["event_type"] == "WorkflowExecutionStarted"
        code, out, err = await baton_json(region.config_path, "workflow", "describe", wid)
        assert code == 0 and out["execution"]["workflow_id"] == wid, err
        assert out["execution"]["status"] == "completed"
