"""`baton schedule backfill` shows the workflow ids of the fires it acted on
one a line, not joined into one cell as wide as all of them (a pipe drew the
table a few thousand columns wide)."""

from __future__ import annotations

from rich.console import Console

from ops.cli_schedules import _backfill_view


def test_backfill_ids_come_one_a_line() -> None:
    ids = [f"nightly-2026-01-{d:02d}T01:30:00Z" for d in range(1, 31)]
    answer = {"schedule_id": "nightly", "fires": 30, "overlap": "buffer-all", "workflow_ids": ids}
    console = Console(record=True, width=240)
    console.print(_backfill_view(answer))
    lines = console.export_text().splitlines()
    for wid in ids:
        [line] = [ln for ln in lines if wid in ln]
        assert line.count("nightly-") == 1
    assert max(len(ln) for ln in lines) < 80
