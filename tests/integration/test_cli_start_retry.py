"""``baton workflow start`` (and ``signal-with-start``) take a workflow retry
policy as ``--retry-*`` options, as the SDK's ``retry_policy=`` and the HTTP
start's ``retry_policy`` do; a bad value is a usage error naming its option."""

from __future__ import annotations

import pytest

from tests.conftest import Region
from tests.helpers import baton_json
from tests.integration.test_workflow_retry import Flaky
from worker import Client, Worker

pytestmark = pytest.mark.integration
QUEUE = "workflow-retry"

START = ("workflow", "start", "--type", "Flaky", "--task-queue", QUEUE)


async def test_the_cli_starts_with_a_retry_policy(region: Region, client: Client) -> None:
    retry = (
        "--retry-initial-interval",
        "0.2",
        "--retry-backoff-coefficient",
        "1",
        "--retry-maximum-attempts",
        "5",
        "--retry-non-retryable-error-type",
        "Stop",
    )
    code, out, err = await baton_json(
        region.config_path, *START, "--id", "cli-retry", "--input", "3", "--input", '"Oops"', *retry
    )
    assert code == 0, err
    code, out, err = await baton_json(region.config_path, "workflow", "describe", "cli-retry")
    assert code == 0, err
    assert out["execution"]["retry_policy"] == {
        "initial_interval_s": 0.2,
        "backoff_coefficient": 1.0,
        "maximum_interval_s": None,
        "maximum_attempts": 5,
        "non_retryable_error_types": ["Stop"],
    }
    async with Worker(client, task_queue=QUEUE, workflows=[Flaky]):
        result = await client.get_workflow_handle("cli-retry").result(timeout=60)
    assert result["attempt"] == 3
    assert result["initial_interval"] == 0.2


async def test_the_cli_takes_the_policy_as_json_too(region: Region, client: Client) -> None:
    """``--retry-policy`` takes the HTTP start's ``retry_policy`` object; the
    ``--retry-*`` options override its fields."""
    policy = '{"maximum_attempts": 4, "initial_interval_s": 3, "non_retryable_error_types": ["X"]}'
    code, _out, err = await baton_json(
        region.config_path,
        *START,
        "--id",
        "cli-retry-json",
        "--retry-policy",
        policy,
        "--retry-maximum-attempts",
        "2",
    )
    assert code == 0, err
    d = (await client.get_workflow_handle("cli-retry-json").describe())["execution"]
    assert d["retry_policy"]["maximum_attempts"] == 2
    assert d["retry_policy"]["initial_interval_s"] == 3.0
    assert d["retry_policy"]["non_retryable_error_types"] == ["X"]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (("--retry-maximum-attempts", "-1"), "--retry-maximum-attempts"),
        (("--retry-backoff-coefficient", "0.5"), "--retry-backoff-coefficient"),
        (
            ("--retry-initial-interval", "10", "--retry-maximum-interval", "5"),
            "--retry-maximum-interval",
        ),
        (("--retry-non-retryable-error-type", " "), "--retry-non-retryable-error-type"),
        (("--retry-policy", '{"max_attempts": 3}'), "max_attempts"),
        (("--retry-policy", '{"maximum_attempts": -1}'), "--retry-policy"),
        (("--retry-policy", "[1]"), "--retry-policy"),
    ],
)
async def test_a_bad_retry_option_is_a_usage_error_naming_it(
    region: Region, client: Client, flags: tuple[str, ...], named: str
) -> None:
    code, out, err = await baton_json(region.config_path, *START, "--id", "cli-bad-retry", *flags)
    assert code == 2, (out, err)
    assert named in str(out) + err
    assert "No such option" not in str(out) + err
    # nothing was started
    assert [w async for w in client.list_workflows("WorkflowId = 'cli-bad-retry'")] == []
