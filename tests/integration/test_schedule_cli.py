"""`baton schedule` through the CLI (a subprocess) against a real region: the
definition its options build, list queries, pause and unpause, trigger,
backfill, update, delete, and the refusals that send nothing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ops.output import when
from scheduler import definition
from scheduler.definition import iso
from scheduler.spec import jittered
from tests.apps.scheduled import Report
from tests.conftest import Region
from tests.helpers import baton_json, eventually
from worker import Client, Worker

pytestmark = pytest.mark.integration
QUEUE = "scheduled-cli"


async def baton(region: Region, *args: str) -> tuple[int, Any, str]:
    return await baton_json(region.config_path, *args)


async def baton_table(region: Region, *args: str) -> tuple[int, str, str]:
    """``baton ARGS`` with its default table output: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "ops.cli", "--config", str(region.config_path)),
        *("--namespace", "default", *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "250"},
    )
    out, err = await proc.communicate()
    return int(proc.returncode or 0), out.decode(), err.decode()


def parse(t: str) -> datetime:
    return datetime.fromisoformat(t.replace("Z", "+00:00"))


async def started_ids(client: Client, schedule_id: str) -> list[str]:
    runs = [r async for r in client.list_workflows(f"ScheduledById = '{schedule_id}'")]
    return sorted(r.workflow_id for r in runs)


def new_year_fires(now: datetime, skip_year: int) -> list[str]:
    """Jan 1 03:00 in Berlin (02:00 UTC) from ``now`` on, but not in ``skip_year``."""
    years = range(now.year, now.year + 12)
    fires = [datetime(y, 1, 1, 2, tzinfo=UTC) for y in years if y != skip_year]
    return [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in fires if t > now][:10]


async def test_create_list_pause_unpause_update_and_delete(client: Client, region: Region) -> None:
    await client.add_search_attribute("Team", "Keyword")
    code, created, err = await baton(
        region,
        *("schedule", "create", "nightly", "-t", "Report", "-q", QUEUE),
        *("--input", '["nightly"]', "--cron", "0 3 1 1 *", "--timezone", "Europe/Berlin"),
        *("--exclude-calendar", '{"hour": "3", "year": "2031"}', "--jitter", "30s"),
        *("--overlap", "buffer-one", "--catchup-window", "1h", "--catchup", "latest"),
        *("--pause-on-failure", "--limited-actions", "5", "--missing", "skip"),
        *("--repeated", "both", "--memo", '{"owner": "ops"}', "--search-attribute", "Team=ops"),
        *("--schedule-search-attribute", "Team=ops"),
    )
    assert code == 0, err
    assert (created["schedule_id"], created["created"], created["paused"]) == (
        "nightly",
        True,
        False,
    )
    code, d, err = await baton(region, "schedule", "describe", "nightly")
    assert code == 0, err
    spec, action, policy = (d["schedule"][k] for k in ("spec", "action", "policy"))
    assert spec["calendars"] == [
        {"second": "0", "minute": "0", "hour": "3", "day": "1", "month": "1"}
        | {"day_of_week": "*", "year": "*"}
    ]
    assert spec["exclude"][0]["year"] == "2031" and spec["exclude"][0]["hour"] == "3"
    assert (spec["timezone"], spec["jitter"]) == ("Europe/Berlin", 30.0)
    assert spec["dst"] == {"missing": "skip", "repeated": "both"}
    assert policy == {
        "overlap": "buffer-one",
        "catchup_window": 3600.0,
        "catchup": "latest",
        "pause_on_failure": True,
        "limited_actions": 5,
    }
    assert (action["workflow_type"], action["task_queue"]) == ("Report", QUEUE)
    assert action["memo"] == {"owner": "ops"} and action["search_attributes"] == {"Team": "ops"}
    assert [await client.decode_one(p) for p in action["input"]] == ["nightly"]
    now = parse((await client.server_time())["now"])
    # five actions left: five next fires
    assert d["next_fires"] == new_year_fires(now, 2031)[:5] == created["next_fires"]
    # with jitter each fire acts later, as Temporal's future action times say
    acts = [
        jittered(definition.load(d["schedule"]).spec, "nightly", parse(t)) for t in d["next_fires"]
    ]
    assert [parse(t) for t in d["next_action_times"]] == acts
    assert all(
        parse(f) <= a < parse(f) + timedelta(seconds=30)
        for f, a in zip(d["next_fires"], acts, strict=True)
    )
    assert acts != [parse(t) for t in d["next_fires"]]
    code, text, err = await baton_table(region, "schedule", "describe", "nightly")
    assert code == 0 and "acts at" in text and when(iso(acts[0])) in text, err

    (c1, found, _), (c2, none, _) = await asyncio.gather(
        baton(region, "schedule", "list", "--query", "Team = 'ops'"),
        baton(region, "schedule", "list", "--query", "Team = 'dev'"),
    )
    assert (c1, c2) == (0, 0)
    assert [s["schedule_id"] for s in found] == ["nightly"] and none == []
    assert found[0]["next_fire"] == d["next_fires"][0] and found[0]["workflow_type"] == "Report"

    code, paused, err = await baton(region, "schedule", "pause", "nightly", "--note", "deploy")
    assert code == 0 and paused["paused"] is True, err

    async def shows(paused: bool, note: str) -> bool:
        d = await client.get_schedule_handle("nightly").describe()
        return (d["paused"], d["note"]) == (paused, note)

    await eventually(lambda: shows(True, "deploy"), timeout=20, what="the pause applied")
    (c1, d, _), (c2, text, err) = await asyncio.gather(
        baton(region, "schedule", "describe", "nightly"),
        baton_table(region, "schedule", "list"),
    )
    assert c1 == 0 and (d["paused"], d["note"]) == (True, "deploy")
    assert c2 == 0 and "nightly" in text and "deploy" in text and "Traceback" not in err
    code, _, err = await baton(region, "schedule", "unpause", "nightly", "--catch-up", "none")
    assert code == 0, err
    await eventually(lambda: shows(False, ""), timeout=20, what="the unpause applied")

    # update replaces the definition: the new cron, and the policy back to its defaults
    code, updated, err = await baton(
        region,
        *("schedule", "update", "nightly", "-t", "Report", "-q", QUEUE),
        *("--input", '["nightly"]', "--cron", "30 4 * * *"),
    )
    assert code == 0 and updated["updated"] is True, err
    assert {"spec.calendars", "spec.timezone", "policy.overlap"} <= set(updated["changed"])
    assert "action.input" not in updated["changed"]

    async def new_cron() -> list[str]:
        fires: list[str] = (await client.get_schedule_handle("nightly").describe())["next_fires"]
        return fires if fires[0].endswith("T04:30:00Z") else []

    fires = await eventually(new_cron, timeout=20, what="the update applied")
    assert len(fires) == 10 and all(t.endswith("T04:30:00Z") for t in fires)
    code, d, _ = await baton(region, "schedule", "describe", "nightly")
    assert d["next_fires"] == fires and d["schedule"]["policy"]["overlap"] == "skip"

    code, missing, _ = await baton(
        region, "schedule", "update", "other", "-t", "Report", "-q", QUEUE, "--cron", "@daily"
    )
    assert code == 1 and missing["error"]["code"] == "SCHEDULE_NOT_FOUND"
    code, upserted, err = await baton(
        region,
        *("schedule", "update", "other", "-t", "Report", "-q", QUEUE, "--cron", "@daily"),
        "--create-if-missing",
    )
    assert code == 0 and upserted["created"] is True, err

    (c1, deleted, err), (c2, _, _) = await asyncio.gather(
        baton(region, "schedule", "delete", "nightly"),
        baton(region, "schedule", "delete", "other", "--reason", "done"),
    )
    assert c1 == c2 == 0 and deleted["deleted"] is True, err
    (c1, gone, err1), (c2, out, err2) = await asyncio.gather(
        baton(region, "schedule", "describe", "nightly"),
        baton_table(region, "schedule", "describe", "nightly"),
    )
    assert c1 == 1 and gone["error"]["code"] == "SCHEDULE_NOT_FOUND", err1
    assert c2 == 1 and "error [SCHEDULE_NOT_FOUND]" in err2 and "Traceback" not in err2 + out
    assert await client.list_schedules() == []


async def test_trigger_backfill_and_update_from_a_file(
    client: Client, region: Region, tmp_path: Path
) -> None:
    async with Worker(client, task_queue=QUEUE, workflows=[Report]):
        code, _, err = await baton(
            region,
            *("schedule", "create", "rep", "-t", "Report", "-q", QUEUE),
            *("--input", '["from-cli"]', "--cron", "0 3 1 1 *"),
        )
        assert code == 0, err
        code, out, err = await baton(region, "schedule", "trigger", "rep")
        assert code == 0 and out["triggered"] is True, err

        async def one_started() -> list[str]:
            return await started_ids(client, "rep")

        [triggered] = await eventually(one_started, timeout=20, what="the triggered run")
        assert triggered.startswith("rep-")
        result = await client.get_workflow_handle(triggered).result(timeout=20)
        assert result["label"] == "from-cli"  # the input as the SDK encodes it

        code, out, err = await baton(
            region,
            *("schedule", "backfill", "rep", "--overlap", "allow-all"),
            *("--start", "2020-01-01T00:00:00Z", "--end", "2022-06-01T00:00:00+02:00"),
        )
        assert code == 0 and (out["fires"], out["overlap"]) == (3, "allow-all"), err
        want = sorted([triggered, *(f"rep-{y}-01-01T03:00:00Z" for y in (2020, 2021, 2022))])

        async def all_done() -> bool:
            d = await client.get_schedule_handle("rep").describe()
            outcomes = sorted((a["workflow_id"], a["outcome"]) for a in d["recent"])
            return outcomes == [(w, "completed") for w in want]

        await eventually(all_done, timeout=30, what="four actions completed")
        assert await started_ids(client, "rep") == want
        (c1, d, _), (c2, text, err) = await asyncio.gather(
            baton(region, "schedule", "describe", "rep"),
            baton_table(region, "schedule", "describe", "rep"),
        )
        assert c1 == 0 and sorted(a["kind"] for a in d["recent"]) == ["backfill"] * 3 + ["trigger"]
        assert c2 == 0 and "Recent actions" in text and "completed" in text, err
        assert "rep-2021-01-01T03:00:00Z" in text and "Next fires" in text

        # the current definition as the base of an update: only what the options name changes
        path = tmp_path / "rep.json"
        path.write_text(json.dumps(d))
        code, out, err = await baton(
            region, "schedule", "update", "rep", "--file", str(path), "--overlap", "allow-all"
        )
        assert code == 0 and out["changed"] == ["policy.overlap"], err

        (c1, bad_range, _), (c2, bad_overlap, _) = await asyncio.gather(
            baton(region, "schedule", "backfill", "rep", "--start", "2022-01-01T00:00:00Z",
                  "--end", "2020-01-01T00:00:00Z"),
            baton(region, "schedule", "trigger", "rep", "--overlap", "sometimes"),
        )  # fmt: skip
        # refused by the CLI before sending: usage errors (exit 2)
        assert c1 == 2 and bad_range["error"]["code"] == "INVALID_ARGUMENT"
        assert c2 == 2 and "--overlap" in bad_overlap["error"]["message"]
        assert await started_ids(client, "rep") == want


BAD = {
    "bad cron": (["--cron", "61 * * * *"], "--cron"),
    "bad input JSON": (["--cron", "@daily", "--input", '["x"'], "--input"),
    "bad duration": (["--cron", "@daily", "--jitter", "5 minutes"], "--jitter"),
    "unknown overlap": (["--cron", "@daily", "--overlap", "sometimes"], "--overlap"),
    "no time": ([], "--cron"),
    # checked by the server: the action's search attribute is not registered
    "unregistered attribute": (["--cron", "@daily", "--search-attribute", "Nope=1"], "Nope"),
    # refused by the SDK before sending: JSON cannot carry them as they are
    "huge memo value": (
        ["--cron", "@daily", "--memo", '{"a": 99999999999999999999}'],
        "memo['a'] is an integer past 64 bits",
    ),
    "huge attribute": (["--cron", "@daily", "--search-attribute", "A=99999999999999999999"], "64"),
    "huge schedule attribute": (
        ["--cron", "@daily", "--schedule-search-attribute", "A=-99999999999999999999"],
        "64 bits",
    ),
    # NaN is not JSON: the CLI refuses it as it reads the option
    "NaN memo value": (["--cron", "@daily", "--memo", '{"a": NaN}'], "--memo"),
    # not JSON: the text typed, as for a workflow's --search-attribute, which
    # a Double refuses by its type and an unknown name by its name
    "infinite attribute": (
        ["--cron", "@daily", "--search-attribute", "A=Infinity"],
        "'A' is not registered",
    ),
}

REFUSED_BY_THE_CLI = {
    "bad cron",
    "bad input JSON",
    "bad duration",
    "unknown overlap",
    "no time",
    "NaN memo value",
}


async def test_bad_input_is_a_typed_error_and_creates_nothing(
    client: Client, region: Region
) -> None:
    results = await asyncio.gather(
        *(
            baton(region, "schedule", "create", "bad", "-t", "Report", "-q", QUEUE, *args)
            for args, _ in BAD.values()
        )
    )
    for (case, (_, expected)), (code, doc, err) in zip(BAD.items(), results, strict=True):
        # what the CLI refuses itself, sending nothing, is a usage error (exit 2)
        assert code == (2 if case in REFUSED_BY_THE_CLI else 1), (case, doc, err)
        assert doc["error"]["code"] == "INVALID_ARGUMENT", (case, doc)
        assert expected in doc["error"]["message"], (case, doc)
        assert "Traceback" not in err, (case, err)
    code, listed, _ = await baton(region, "schedule", "list")
    assert code == 0 and listed == [] and await client.list_schedules() == []


async def test_update_refuses_the_create_options_it_cannot_honour(
    client: Client, region: Region
) -> None:
    """Paused, note and the schedule's own search attributes stay as they are
    under update: given to it, they are a usage error, never ignored."""
    code, _, err = await baton(
        region, "schedule", "create", "kept", "-t", "Report", "-q", QUEUE, "--cron", "@daily"
    )
    assert code == 0, err
    before = await client.get_schedule_handle("kept").describe()
    update = ("schedule", "update", "kept", "-t", "Report", "-q", QUEUE, "--cron", "@hourly")
    cases = {
        "--paused": (["--paused"], "schedule pause kept"),
        "--note": (["--note", "why"], "schedule pause kept"),
        "--schedule-search-attribute": (
            ["--schedule-search-attribute", "Team=ops"],
            "--schedule-search-attribute is create's",
        ),
    }
    for name, (args, hint) in cases.items():
        code, doc, err = await baton(region, *update, *args)
        assert code == 2, (name, doc, err)
        assert doc["error"]["code"] == "USAGE_ERROR" and hint in doc["error"]["message"], name
    d = await client.get_schedule_handle("kept").describe()  # nothing sent
    assert (d["paused"], d["note"], d["schedule"]) == (False, "", before["schedule"])
    code, updated, err = await baton(region, *update)  # without them: the update
    assert code == 0 and updated["updated"] is True, err


async def test_a_change_sent_again_with_its_request_id_acts_once(
    client: Client, region: Region
) -> None:
    """Regression: the schedule commands took no --request-id, so a retried
    command drew a fresh id and a trigger or backfill acted twice."""
    create = ("schedule", "create", "retried", "-t", "Report", "-q", QUEUE, "--cron", "0 0 1 1 *")
    code, out, err = await baton(region, *create, "--paused", "--request-id", "c-1")
    assert code == 0 and out["created"] is True, (out, err)
    # the retry finds it made: it says so (it said created: true)
    code, out, err = await baton(region, *create, "--paused", "--request-id", "c-1")
    assert code == 0 and out["created"] is False, (out, err)
    verbs = [
        ("trigger", "retried", "--overlap", "allow-all"),
        ("pause", "retried", "--note", "held"),
        ("unpause", "retried"),
        ("backfill", "retried", "--start", "2026-01-01T00:00:00Z", "--end", "2026-01-01T00:00:00Z"),
        ("update", "retried", "-t", "Report", "-q", QUEUE, "--cron", "0 0 2 1 *"),
    ]
    for verb in verbs:
        for _ in range(2):
            code, out, err = await baton(region, "schedule", *verb, "--request-id", f"{verb[0]}-1")
            assert code == 0, (verb, out, err)
    wf = client.get_workflow_handle("schedule/retried")
    signals = [
        e["attributes"]["signal_name"]
        for e in await wf.history()
        if e["event_type"] == "WorkflowExecutionSignaled"
    ]
    assert signals == ["trigger", "pause", "unpause", "backfill", "update"], signals
    for _ in range(2):  # the retried delete finds it done and answers as it did
        code, out, err = await baton(region, "schedule", "delete", "retried", "--request-id", "d-1")
        assert code == 0 and out["deleted"], (out, err)


@pytest.mark.parametrize(
    "verb",
    [
        ("create", "blank", "-t", "Report", "-q", QUEUE, "--cron", "0 0 1 1 *"),
        ("update", "blank", "-t", "Report", "-q", QUEUE, "--cron", "0 0 1 1 *"),
        ("pause", "blank", "--note", "n"),
        ("unpause", "blank"),
        ("trigger", "blank"),
        ("backfill", "blank", "--start", "2026-01-01T00:00:00Z", "--end", "2026-01-02T00:00:00Z"),
        ("delete", "blank"),
    ],
)
async def test_a_blank_schedule_request_id_is_refused_before_sending(
    client: Client, region: Region, verb: tuple[str, ...]
) -> None:
    code, out, err = await baton(region, "schedule", *verb, "--request-id", " ")
    assert code == 2, (out, err)
    message = out["error"]["message"]
    assert "--request-id" in message and "is empty: give an id" in message, out
    assert await client.list_schedules() == []


async def test_pause_without_a_note_pauses_with_the_default_note(
    client: Client, region: Region
) -> None:
    """`schedule pause ID` needs no --note (Temporal's does not): it records a
    note saying where the pause came from, and unpause clears it."""
    create = ("schedule", "create", "quiet", "-t", "Report", "-q", QUEUE, "--cron", "0 0 1 1 *")
    code, _, err = await baton(region, *create)
    assert code == 0, err
    code, out, err = await baton(region, "schedule", "pause", "quiet")
    assert code == 0, (out, err)
    assert (out["paused"], out["note"]) == (True, "Paused via baton CLI"), out

    async def noted() -> bool:
        d = await client.get_schedule_handle("quiet").describe()
        return (d["paused"], d["note"]) == (True, "Paused via baton CLI")

    await eventually(noted, timeout=20, what="the pause applied with the default note")
    code, out, err = await baton(region, "schedule", "unpause", "quiet")
    assert code == 0 and out["paused"] is False, (out, err)


async def test_a_copy_of_a_paused_schedule_made_from_its_describe_is_paused(
    client: Client, region: Region, tmp_path: Path
) -> None:
    """Regression: `create --file` of a paused schedule's `describe -o json` made an
    unpaused copy that fired at once, the file's paused state and note dropped."""
    create = ("schedule", "create", "held", "-t", "Report", "-q", QUEUE)
    code, _, err = await baton(region, *create, "--interval", "1s", "--paused", "--note", "audit")
    assert code == 0, err
    code, d, err = await baton(region, "schedule", "describe", "held")
    assert code == 0 and d["paused"] is True, err
    path = tmp_path / "held.json"
    path.write_text(json.dumps(d))
    code, out, err = await baton(region, "schedule", "create", "held-copy", "--file", str(path))
    assert code == 0 and out["paused"] is True and out["note"] == "audit", (out, err)
    copy = await client.get_schedule_handle("held-copy").describe()
    assert copy["paused"] is True and copy["note"] == "audit"
    # --note still names the copy's own reason
    code, out, err = await baton(
        region, "schedule", "create", "held-2", "--file", str(path), "--note", "mine"
    )
    assert code == 0 and out["paused"] is True and out["note"] == "mine", (out, err)
    # a plain definition file may say it too; a paused that is not a bool is refused
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({**d["schedule"], "paused": True, "note": "plain"}))
    code, out, err = await baton(region, "schedule", "create", "held-3", "--file", str(plain))
    assert code == 0 and (out["paused"], out["note"]) == (True, "plain"), (out, err)
    plain.write_text(json.dumps({**d["schedule"], "paused": "yes"}))
    code, out, err = await baton(region, "schedule", "create", "held-4", "--file", str(plain))
    assert code == 2 and "paused is true or false" in out["error"]["message"], (out, err)
    await asyncio.sleep(2)  # an unpaused copy would have fired by now
    assert await started_ids(client, "held-copy") == []
