"""The root's options after the command, as Temporal's CLI takes them:
``baton workflow list -n NS``, ``baton namespace describe NS --region R``."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from tests.conftest import Region
from tests.helpers import ROOT


async def baton(*args: str) -> tuple[int, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ops.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, _err = await proc.communicate()
    return int(proc.returncode or 0), json.loads(out or b"null")


async def test_namespace_region_and_config_after_the_command(region: Region) -> None:
    # Each was "No such option '-n'" (or '--region', '--config'), a usage
    # error, though the reference says every command takes them.
    cfg = str(region.config_path)
    code, made = await baton("namespace", "create", "pay", "--config", cfg, "-o", "json")
    assert code == 0, made
    code, started = await baton(
        "workflow", "start", "-t", "T", "-q", "q", "--id", "w1",
        "--config", cfg, "-n", "pay", "-o", "json",
    )  # fmt: skip
    assert code == 0, started
    code, listed = await baton(
        "workflow", "list", "--namespace", "pay", "--config", cfg, "-o", "json"
    )
    assert code == 0, listed
    assert [w["workflow_id"] for w in listed] == ["w1"]
    code, described = await baton(
        "namespace", "describe", "pay", "--region", region.name, "--config", cfg, "-o", "json"
    )
    assert code == 0, described
    assert described["name"] == "pay" and described["executions"]["running"] == 1
    code, refused = await baton(
        "namespace", "describe", "pay", "--region", "region-z", "--config", cfg, "-o", "json"
    )
    # a region the config does not have: a usage error (exit 2)
    assert code == 2 and refused["error"]["code"] == "INVALID_ARGUMENT"
    assert "region-z" in refused["error"]["message"]
    # the option after the command wins over the one before it, as -o does
    code, again = await baton(
        "--config", cfg, "-n", "nowhere", "workflow", "describe", "w1", "-n", "pay", "-o", "json"
    )
    assert code == 0, again
    code, empty = await baton("workflow", "list", "-n", "", "--config", cfg, "-o", "json")
    assert code == 2 and empty["error"]["code"] == "USAGE_ERROR"
    assert "--namespace" in empty["error"]["message"]
