"""With the AES-GCM codec on, the region database holds no plaintext."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest

from ops.pg import PgCluster
from tests.apps.workflows import ALL_ACTIVITIES, Secret
from tests.conftest import Region
from tests.helpers import baton_json, eventually
from worker import AesGcmCodec, Client, DataConverter, Worker, activity, workflow
from worker.codec import KEY_ENV_VAR, format_key_spec, generate_key

pytestmark = pytest.mark.integration


def contains_marker(dump: str, marker: str) -> bool:
    """Whether the marker is in the dump as text, hex or base64 (at any alignment)."""
    if marker in dump or marker.encode().hex() in dump:
        return True
    raw = marker.encode()
    for shift in range(3):
        # The base64 of the marker, aligned as it would be after `shift` leading bytes.
        chunk = base64.b64encode(b"\0" * shift + raw).decode()
        core = chunk[(shift * 4 + 2) // 3 + 1 : -4]
        if core and core in dump:
            return True
    for token in re.findall(r"[A-Za-z0-9+/]{16,}={0,2}", dump):
        try:
            if raw in base64.b64decode(token + "=" * (-len(token) % 4)):
                return True
        except ValueError:
            continue
    return False


async def run_secret_workflow(client: Client, marker: str) -> str:
    async with Worker(client, task_queue="secret", workflows=[Secret], activities=ALL_ACTIVITIES):
        handle = await client.start_workflow(
            Secret, marker, id=f"secret-{uuid.uuid4().hex[:6]}", task_queue="secret", memo={}
        )
        await handle.signal("add_note", f"note-{marker}")
        return str(await handle.result(timeout=30))


async def test_marker_appears_nowhere_in_pg_dump_with_the_codec_on(
    region: Region, pg: PgCluster
) -> None:
    marker = f"MARKER-{uuid.uuid4().hex}"
    codec = AesGcmCodec(keys={"k1": generate_key()}, active_key_id="k1")
    async with await Client.connect(
        region.url, data_converter=DataConverter(codec=codec)
    ) as client:
        await client.create_namespace("default")
        assert await run_secret_workflow(client, marker) == f"{marker}|note-{marker}"
    dump = pg.dump(region.dbname)
    assert "WorkflowExecutionCompleted" in dump  # the dump does hold the history
    assert not contains_marker(dump, marker)


async def test_without_the_codec_the_detector_finds_the_marker(
    region: Region, pg: PgCluster
) -> None:
    # The control: proves the check above would see plaintext if it were there.
    marker = f"MARKER-{uuid.uuid4().hex}"
    async with await Client.connect(region.url) as client:
        await client.create_namespace("default")
        await run_secret_workflow(client, marker)
    assert contains_marker(pg.dump(region.dbname), marker)


@workflow.defn(name="MemoEcho")
class MemoEcho:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        return dict(workflow.info().memo)


async def test_a_memo_is_encrypted_and_reads_back_as_its_values(
    region: Region, pg: PgCluster
) -> None:
    """A memo's values are payloads, so the codec encrypts them; the run's
    code (``workflow.info().memo``) and ``describe`` read them as values, and a
    client without the key gets the payloads rather than an error."""
    marker = f"MARKER-{uuid.uuid4().hex}"
    memo = {"owner": f"memo-{marker}", "tier": 3, "tags": ["a", "b"]}
    codec = AesGcmCodec(keys={"k1": generate_key()}, active_key_id="k1")
    wid = f"memo-{uuid.uuid4().hex[:6]}"
    async with await Client.connect(
        region.url, data_converter=DataConverter(codec=codec)
    ) as client:
        await client.create_namespace("default")
        async with Worker(client, task_queue="memo", workflows=[MemoEcho]):
            handle = await client.start_workflow(MemoEcho, id=wid, task_queue="memo", memo=memo)
            assert await handle.result(timeout=30) == memo
        assert (await handle.describe())["execution"]["memo"] == memo
    assert not contains_marker(pg.dump(region.dbname), marker)
    async with await Client.connect(region.url) as keyless:
        seen = (await keyless.get_workflow_handle(wid).describe())["execution"]["memo"]
    assert set(seen) == set(memo)
    assert all(set(v) == {"metadata", "data"} for v in seen.values()), seen


async def test_a_schedules_memo_is_encrypted_and_its_runs_read_it_as_values(
    region: Region, pg: PgCluster
) -> None:
    """The memo a schedule gives its runs is encoded by the creating client, as
    its input is: the store holds ciphertext, ``describe`` and the runs read values."""
    marker = f"MARKER-{uuid.uuid4().hex}"
    memo = {"owner": f"sched-{marker}", "tier": 2}
    codec = AesGcmCodec(keys={"k1": generate_key()}, active_key_id="k1")
    async with await Client.connect(
        region.url, data_converter=DataConverter(codec=codec)
    ) as client:
        await client.create_namespace("default")
        sched = await client.schedule_definition(
            workflow=MemoEcho, task_queue="memo", cron="0 0 1 1 *", memo=memo
        )
        h = await client.create_schedule("memo-echo", sched)
        assert (await h.describe())["schedule"]["action"]["memo"] == memo
        async with Worker(client, task_queue="memo", workflows=[MemoEcho]):
            await h.trigger()

            async def started() -> list[str]:
                q = "ScheduledById = 'memo-echo'"
                return [r.workflow_id async for r in client.list_workflows(q)]

            (wid,) = await eventually(started, timeout=30, what="the triggered run")
            run = client.get_workflow_handle(wid)
            assert await run.result(timeout=30) == memo
            assert (await run.describe())["execution"]["memo"] == memo
        await h.delete()
    assert not contains_marker(pg.dump(region.dbname), marker)


async def test_the_cli_encrypts_what_it_sends_and_decrypts_what_it_shows_with_the_sdks_keys(
    region: Region, pg: PgCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``baton workflow ...`` reads ``BATON_ENCRYPTION_KEYS`` as ``AesGcmCodec.from_env``
    does: an input, memo or signal it sends is stored as ciphertext (the
    workers would take plaintext too, so nothing else would tell), and a
    result it reads comes back as its value."""
    marker = f"MARKER-{uuid.uuid4().hex}"
    keys = {"k1": generate_key()}
    codec = AesGcmCodec(keys=keys, active_key_id="k1")
    monkeypatch.setenv(KEY_ENV_VAR, format_key_spec(keys, active_key_id="k1"))
    wid = f"cli-secret-{uuid.uuid4().hex[:6]}"
    async with await Client.connect(
        region.url, data_converter=DataConverter(codec=codec)
    ) as client:
        await client.create_namespace("default")
        async with Worker(
            client, task_queue="secret", workflows=[Secret], activities=ALL_ACTIVITIES
        ):
            code, _, err = await baton_json(
                region.config_path,
                *("workflow", "start", "-t", "Secret", "-q", "secret", "--id", wid),
                *("--input", f'"{marker}"', "--memo", f'{{"owner": "memo-{marker}"}}'),
            )
            assert code == 0, err
            code, _, err = await baton_json(
                region.config_path,
                *("workflow", "signal", wid, "add_note", "--input", f'"note-{marker}"'),
            )
            assert code == 0, err
            code, out, err = await baton_json(
                region.config_path, "workflow", "result", wid, "--timeout", "30"
            )
            assert code == 0, err
            assert out["result"] == f"{marker}|note-{marker}"
            # The history shows what the CLI sent as it was sent, decrypted.
            code, out, err = await baton_json(region.config_path, "workflow", "history", wid)
            assert code == 0, err
            (first, *_) = out["events"]
            (sent,) = first["attributes"]["input"]
            assert sent["metadata"]["encoding"] == "json/plain", sent
            assert base64.b64decode(sent["data"]) == f'"{marker}"'.encode()
            described = (await client.get_workflow_handle(wid).describe())["execution"]
            assert described["memo"] == {"owner": f"memo-{marker}"}
    assert not contains_marker(pg.dump(region.dbname), marker)


@activity.defn(name="BreaksWith")
async def breaks_with(text: str) -> None:
    activity.heartbeat(f"beat-{text}")
    raise RuntimeError(f"broke-{text}")


@workflow.defn(name="Breaking")
class Breaking:
    @workflow.run
    async def run(self, text: str) -> None:
        await workflow.execute_activity(
            breaks_with, text, start_to_close_timeout=timedelta(seconds=10)
        )


async def test_the_cli_describes_an_activitys_failure_and_heartbeat_with_the_sdks_keys(
    region: Region, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an operator looks at a stuck activity for, its last failure and
    heartbeat, reads as the worker wrote it when the CLI has the keys."""
    marker = f"MARKER-{uuid.uuid4().hex}"
    keys = {"k1": generate_key()}
    codec = AesGcmCodec(keys=keys, active_key_id="k1")
    monkeypatch.setenv(KEY_ENV_VAR, format_key_spec(keys, active_key_id="k1"))
    wid = f"cli-breaking-{uuid.uuid4().hex[:6]}"
    async with await Client.connect(
        region.url, data_converter=DataConverter(codec=codec)
    ) as client:
        await client.create_namespace("default")
        async with Worker(
            client, task_queue="breaking", workflows=[Breaking], activities=[breaks_with]
        ):
            await client.start_workflow(Breaking, marker, id=wid, task_queue="breaking")

            async def failed_once() -> dict[str, Any] | None:
                code, out, err = await baton_json(region.config_path, "workflow", "describe", wid)
                assert code == 0, err
                (pending,) = out["pending_activities"] or [None]
                return pending if pending and pending["last_failure"] else None

            pending = await eventually(failed_once, what="the activity's first failure")
    assert pending["last_failure"]["message"] == f"broke-{marker}", pending
    (beat,) = pending["heartbeat_details"]
    assert base64.b64decode(beat["data"]) == f'"beat-{marker}"'.encode(), beat


async def test_the_cli_shows_a_history_and_a_describe_with_what_its_keys_cannot_open_left_encrypted(
    region: Region, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a key rotation (or with another team's key) the CLI still shows a
    run: the payloads its keys open read as values, the others stay as the
    ciphertext they are, as they would with no key at all."""
    old, new = {"old": generate_key()}, {"new": generate_key()}
    marker = f"MARKER-{uuid.uuid4().hex}"
    wid = f"cli-rotated-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv(KEY_ENV_VAR, format_key_spec(new, active_key_id="new"))
    old_codec = DataConverter(codec=AesGcmCodec(keys=old, active_key_id="old"))
    new_codec = DataConverter(codec=AesGcmCodec(keys=new, active_key_id="new"))
    async with (
        await Client.connect(region.url, data_converter=old_codec) as before,
        await Client.connect(region.url, data_converter=new_codec) as after,
    ):
        await before.create_namespace("default")
        async with Worker(
            before, task_queue="breaking", workflows=[Breaking], activities=[breaks_with]
        ):
            await before.start_workflow(Breaking, marker, id=wid, task_queue="breaking")

            async def failed_once() -> dict[str, Any] | None:
                code, out, err = await baton_json(region.config_path, "workflow", "describe", wid)
                assert code == 0, err
                (pending,) = out["pending_activities"] or [None]
                return pending if pending and pending["last_failure"] else None

            pending = await eventually(failed_once, what="the activity's first failure")
        await after.get_workflow_handle(wid).signal("unknown", f"signal-{marker}")
        code, out, err = await baton_json(region.config_path, "workflow", "history", wid)
    (beat,) = pending["heartbeat_details"]
    assert beat["metadata"]["encryption-key-id"] == "old", beat
    assert code == 0, err
    started = out["events"][0]["attributes"]["input"][0]
    assert started["metadata"]["encryption-key-id"] == "old", started
    (signaled,) = [e for e in out["events"] if e["event_type"] == "WorkflowExecutionSignaled"]
    (sent,) = signaled["attributes"]["input"]
    assert base64.b64decode(sent["data"]) == f'"signal-{marker}"'.encode(), sent


async def test_the_cli_lists_memos_as_values_with_the_sdks_keys(
    region: Region, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`workflow list` shows a run's memo as `workflow describe` does."""
    keys = {"k1": generate_key()}
    monkeypatch.setenv(KEY_ENV_VAR, format_key_spec(keys, active_key_id="k1"))
    converter = DataConverter(codec=AesGcmCodec(keys=keys, active_key_id="k1"))
    wid = f"cli-listed-{uuid.uuid4().hex[:6]}"
    async with await Client.connect(region.url, data_converter=converter) as client:
        await client.create_namespace("default")
        await client.start_workflow("T", id=wid, task_queue="q", memo={"owner": "alice"})
    code, runs, err = await baton_json(region.config_path, "workflow", "list", "--prefix", wid)
    assert code == 0, err
    assert [r["memo"] for r in runs] == [{"owner": "alice"}]
