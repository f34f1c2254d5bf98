"""``workflow.unsafe``: calls that let workflow code step outside its usual rules."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from worker._workflow_api import _runtime

__all__ = ["unsafe"]


class unsafe:
    # A namespace spelt like a module, as ``workflow.unsafe.is_replaying()`` reads.
    """Calls that let workflow code behave differently on replay: use with care."""

    @staticmethod
    def is_replaying() -> bool:
        """Whether the workflow code is being replayed from history right now."""
        return _runtime().is_replaying()

    @staticmethod
    @contextlib.contextmanager
    def imports_passed_through() -> Iterator[None]:
        """Temporal's way to import modules past its workflow sandbox, taken as
        it is written (``with workflow.unsafe.imports_passed_through():``).
        Baton runs workflow code without a sandbox, so it changes nothing: the
        imports inside it are ordinary imports."""
        yield

    @staticmethod
    @contextlib.contextmanager
    def sandbox_unrestricted() -> Iterator[None]:
        """Temporal's way to lift its sandbox's restrictions for a block; Baton
        has no sandbox, so it changes nothing (determinism is still the code's)."""
        yield
