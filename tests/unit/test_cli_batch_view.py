"""What `baton batch describe` prints as a table: the operation in the one
line `batch list` shows, a signal's input decoded, never base64."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from ops.cli_batch import _view
from worker.converter import DataConverter


def operation_cell(op: dict[str, Any]) -> str:
    console = Console(width=300, record=True, file=io.StringIO())
    console.print(_view({"job_id": "j-1", "state": "completed", "operation": op}))
    line = next(x for x in console.export_text().splitlines() if " operation " in x)
    return line.split("│")[2].strip()


def test_a_signal_job_shows_its_name_and_decoded_input() -> None:
    payloads = [p.model_dump() for p in DataConverter().payload_converter.to_payloads(["stop", 2])]
    op = {"kind": "signal", "params": {"signal_name": "note", "input": payloads}}
    assert operation_cell(op) == 'signal note with input ["stop", 2]'


def test_other_jobs_read_as_batch_list_reads_them() -> None:
    assert operation_cell({"kind": "terminate", "params": {}}) == "terminate"
    reset = {"kind": "reset", "params": {"to": "FirstWorkflowTask", "reapply": "signal"}}
    assert operation_cell(reset) == "reset to FirstWorkflowTask"
    assert operation_cell({"kind": "unpause", "params": {"to_current": True}}) == (
        "unpause onto the current build"
    )


def test_an_operation_of_an_unknown_kind_is_shown_as_given() -> None:
    assert operation_cell({"kind": "later", "params": {}}) == '{"kind": "later", "params": {}}'
