"""`baton demo` into a pipe or a file: its tables are as wide as they need,
so a workflow id is never folded across lines."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from ops.demo import _print_orders
from ops.output import print_wide


def test_the_orders_table_keeps_each_workflow_id_on_one_line() -> None:
    """Regression: into a pipe it folded to 80 columns (`order-73757` / `-1`)."""
    out = io.StringIO()
    ids = [f"order-7375{i}-{i}" for i in range(3)]
    report = {
        "orders": [
            {
                "workflow_id": wid,
                "charge_attempt": 2,
                "resumed_from_heartbeat": 3,
                "charged_by_worker": 123456,
                "activities_completed": 4,
                "events": 31,
            }
            for wid in ids
        ]
    }
    _print_orders(Console(file=out, width=80), report, 3, 123456)
    lines = out.getvalue().splitlines()
    for wid in ids:
        assert any(wid in line for line in lines), out.getvalue()
    assert any("charged by worker" in line for line in lines), out.getvalue()


def test_a_quiet_console_prints_nothing() -> None:
    out = io.StringIO()
    t = Table("id")
    t.add_row("x")
    print_wide(t, Console(file=out, quiet=True))
    assert out.getvalue() == ""
