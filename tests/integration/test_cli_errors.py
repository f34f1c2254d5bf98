"""No CLI command prints a traceback for a database error: a typed line and exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ops.cli import cli
from ops.pg import PgCluster
from tests.conftest import Region, fresh_database
from tests.helpers import baton_json, free_port, write_config
from worker import Client

pytestmark = pytest.mark.integration


def test_a_failover_against_a_broken_region_database_is_a_typed_error(
    pg: PgCluster, template_db: str, tmp_path: Path
) -> None:
    good_db = fresh_database(pg, template_db)
    good = pg.dsn(good_db)
    bare = f"bare_{free_port()}"
    pg.create_database(bare)  # never migrated: its queries fail in the database
    cfg = write_config(
        tmp_path / "baton.toml",
        {
            "region-a": (free_port(), good),
            "region-b": (free_port(), pg.dsn(bare)),
            "region-c": (free_port(), f"postgresql://postgres@127.0.0.1:{free_port()}/x"),
        },
    )
    pg.psql(
        good_db,
        "INSERT INTO namespaces (name, regions, active_region, failover_version) "
        "VALUES ('payments', '{region-a,region-b,region-c}', 'region-a', 1)",
    )
    cfg.write_text(cfg.read_text() + '\n[kafka]\nbootstrap = "127.0.0.1:1"\n')
    for target, code in (("region-b", "DATABASE_ERROR"), ("region-c", "UNAVAILABLE")):
        for output in ("table", "json"):
            result = CliRunner().invoke(
                cli,
                [
                    "--config",
                    str(cfg),
                    "failover",
                    "payments",
                    "--to",
                    target,
                    "--force",
                    "--output",
                    output,
                ],
            )
            text = result.output + (result.stderr if result.stderr_bytes else "")
            assert result.exit_code == 1, text
            assert "Traceback" not in text, text
            assert code in text, text
            if output == "json":
                assert json.loads(result.stdout)["error"]["code"] == code


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ("Amount=99999999999999999999", "64 bits"),
        ("Amount=-99999999999999999999", "64 bits"),
    ],
)
async def test_a_value_json_cannot_carry_is_a_typed_error_and_starts_nothing(
    client: Client, region: Region, attribute: str, expected: str
) -> None:
    await client.add_search_attribute("Amount", "Int")
    code, doc, err = await baton_json(
        region.config_path,
        *("workflow", "start", "--type", "Pipeline", "--task-queue", "q", "--id", "big"),
        *("--search-attribute", attribute),
    )
    assert code == 1, (doc, err)
    assert "Traceback" not in err, err
    assert doc["error"]["code"] == "INVALID_ARGUMENT", doc
    assert expected in doc["error"]["message"] and "Amount" in doc["error"]["message"], doc
    assert [e async for e in client.list_workflows("")] == []


async def test_nan_and_infinities_are_refused_as_inf_is_and_start_nothing(
    client: Client, region: Region
) -> None:
    """``Amount=NaN`` used to answer "send it as a string" while ``Amount=inf``
    got the attribute's type: every value a Double cannot hold gets the latter."""
    await client.add_search_attribute("Amount", "Double")
    start = ("workflow", "start", "--type", "Pipeline", "--task-queue", "q", "--id", "amt")
    for value in ("inf", "NaN", "Infinity", "-Infinity", "1e999"):
        code, doc, err = await baton_json(
            region.config_path, *start, "--search-attribute", f"Amount={value}"
        )
        assert code == 1 and doc["error"]["code"] == "INVALID_ARGUMENT", (value, doc, err)
        message = doc["error"]["message"]
        assert message == f"search attribute 'Amount' is Double; {value!r} is not a Double value"
    assert [e async for e in client.list_workflows("")] == []


async def test_a_number_given_to_a_keyword_attribute_says_how_to_quote_it(
    client: Client, region: Region
) -> None:
    """``--search-attribute Cust=123`` reads 123 as a JSON number; the refusal
    says how to send it as the string a Keyword takes, and nothing starts."""
    await client.add_search_attribute("Cust", "Keyword")
    start = ("workflow", "start", "--type", "Pipeline", "--task-queue", "q", "--id", "cust")
    code, doc, err = await baton_json(region.config_path, *start, "--search-attribute", "Cust=123")
    assert code == 1 and doc["error"]["code"] == "INVALID_ARGUMENT", (doc, err)
    assert """Cust='"123"'""" in doc["error"]["message"], doc
    assert [e async for e in client.list_workflows("")] == []
    code, doc, err = await baton_json(
        region.config_path, *start, "--search-attribute", 'Cust="123"'
    )
    assert code == 0, (doc, err)


async def test_a_list_cut_at_its_limit_says_so(client: Client, region: Region) -> None:
    """A script listing runs learns that more match than it was shown."""
    for i in range(3):
        await client.start_workflow("Pipeline", id=f"cut-{i}", task_queue="q")
    code, runs, err = await baton_json(region.config_path, "workflow", "list", "--limit", "2")
    assert code == 0, err
    assert [r["workflow_id"] for r in runs] == ["cut-2", "cut-1"]
    assert "--limit" in err
    code, runs, err = await baton_json(region.config_path, "workflow", "list", "--limit", "3")
    assert code == 0 and len(runs) == 3 and err == "", err
