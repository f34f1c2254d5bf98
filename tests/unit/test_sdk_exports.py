"""The SDK's public surface, and that it stays an HTTP-only package."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import worker
import worker.errors as worker_errors

ROOT = Path(__file__).resolve().parents[2]

EXPECTED_ALL = [
    "ActivityError",
    "AesGcmCodec",
    "ApplicationError",
    "ArgumentsGivenTwiceError",
    "BatchAlreadyExistsError",
    "BatchNotFoundError",
    "BatonError",
    "CanceledError",
    "Client",
    "ClientClosedError",
    "DataConverter",
    "DeploymentNotFoundError",
    "FailureError",
    "InternalServerError",
    "InvalidArgumentError",
    "InvalidQueryError",
    "LimitExceededError",
    "MalformedRequestError",
    "MethodNotAllowedError",
    "NamespaceAlreadyExistsError",
    "NamespaceInHandoverError",
    "NamespaceNotActiveError",
    "NamespaceNotFoundError",
    "NoPollersError",
    "NonDeterminismError",
    "PayloadCodec",
    "PayloadConverter",
    "PayloadDecryptionError",
    "PayloadTooLargeError",
    "PayloadTypeError",
    "QueryFailedError",
    "QueryTimedOutError",
    "RawValue",
    "Replayer",
    "RetryPolicy",
    "RevisionMismatchError",
    "RouteNotFoundError",
    "ScheduleAlreadyExistsError",
    "ScheduleHandle",
    "ScheduleNotFoundError",
    "SchemaOutOfDateError",
    "TaskNotFoundError",
    "TerminatedError",
    "TimeoutError_",
    "UnavailableError",
    "UnknownEncryptionKeyError",
    "UpdateFailedError",
    "UpdateNotFoundError",
    "UpdateRejectedError",
    "UpdateTimedOutError",
    "Worker",
    "WorkflowAlreadyStartedError",
    "WorkflowContinuedAsNewError",
    "WorkflowExecution",
    "WorkflowExecutionDescription",
    "WorkflowExecutionStatus",
    "WorkflowFailureError",
    "WorkflowHandle",
    "WorkflowHistory",
    "WorkflowIDConflictPolicy",
    "WorkflowIDReusePolicy",
    "WorkflowIdConflictPolicy",
    "WorkflowIdReusePolicy",
    "WorkflowNotFoundError",
    "WorkflowNotRunningError",
    "WorkflowPausedError",
    "WorkflowReplayResult",
    "WorkflowReplayResults",
    "WorkflowUpdateHandle",
    "WorkflowUpdateStage",
    "activity",
    "endpoints_from_config",
    "workflow",
]

# Server-side dependencies a worker process must never load.
FORBIDDEN = ("asyncpg", "aiokafka", "store", "fastapi")


def test_all_is_pinned() -> None:
    assert worker.__all__ == EXPECTED_ALL


def test_all_is_sorted_and_unique() -> None:
    assert sorted(set(worker.__all__)) == worker.__all__


def test_every_exported_name_is_importable() -> None:
    module = importlib.import_module("worker")
    for name in EXPECTED_ALL:
        assert getattr(module, name, None) is not None, name
    namespace: dict[str, object] = {}
    exec("from worker import *", namespace)  # the star import honours __all__
    assert set(EXPECTED_ALL) <= namespace.keys()


def test_every_sdk_error_is_exported() -> None:
    # The README names errors a caller catches (WorkflowAlreadyStartedError,
    # InvalidArgumentError, ...) without a module: `from worker import X` takes
    # each, as `from temporalio.client import ...` does. TestClockOffError
    # stays in worker.errors alone: pytest would try to collect it from a
    # test module that star-imports the SDK.
    errors = {
        name
        for name, obj in vars(worker_errors).items()
        if isinstance(obj, type)
        and issubclass(obj, Exception)
        and obj.__module__ == worker_errors.__name__
    }
    assert errors - set(worker.__all__) == {"TestClockOffError"}
    for name in errors - {"TestClockOffError"}:
        assert getattr(worker, name) is getattr(worker_errors, name), name


def test_errors_the_readme_names_import_from_worker() -> None:
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"`([A-Z][A-Za-z]*Error_?)`", readme))
    sdk_named = {name for name in named if hasattr(worker_errors, name)}
    assert {"WorkflowAlreadyStartedError", "InvalidArgumentError"} <= sdk_named
    assert sorted(sdk_named - set(worker.__all__)) == []


def _modules_loaded_by(code: str) -> list[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    loaded: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded


def _forbidden(loaded: list[str]) -> list[str]:
    return [m for m in loaded if m.split(".")[0] in FORBIDDEN]


def test_importing_worker_loads_no_server_dependency() -> None:
    loaded = _modules_loaded_by("import worker")
    assert "worker" in loaded
    assert _forbidden(loaded) == []


def test_no_worker_module_loads_a_server_dependency() -> None:
    # Submodules not re-exported by worker/__init__ count too: a worker process
    # may import any of them.
    code = (
        "import importlib, pkgutil, worker\n"
        "for m in pkgutil.iter_modules(worker.__path__):\n"
        "    importlib.import_module('worker.' + m.name)"
    )
    loaded = _modules_loaded_by(code)
    assert "worker._worker" in loaded and "worker.client" in loaded
    assert _forbidden(loaded) == []


def test_workflow_spells_non_determinism_as_temporal_does() -> None:
    """``failure_exception_types=[workflow.NondeterminismError]``, as Temporal
    code writes it, lists the error a non-determinism raises."""
    from worker import NonDeterminismError, workflow

    assert workflow.NondeterminismError is NonDeterminismError
