"""The wire's list of retryable codes agrees with the errors both sides raise."""

from __future__ import annotations

import inspect

import pytest

import store.errors
import worker.errors
from store.errors import Unavailable, wrap_exceptions
from worker.wire import RETRYABLE_CODES, ErrorCode


def _classes(module: object, root: type) -> list[type]:
    return [c for _, c in inspect.getmembers(module, inspect.isclass) if issubclass(c, root)]


def test_retryable_codes_are_the_codes_of_retryable_errors() -> None:
    """A client deciding by RETRYABLE_CODES whether to call again must decide as
    the error body's ``retryable`` does (UPDATE_TIMED_OUT was left out)."""
    for cls in _classes(store.errors, store.errors.StoreError):
        if cls.code is ErrorCode.INTERNAL:
            continue
        assert cls.retryable == (cls.code in RETRYABLE_CODES), cls.__name__
    for sdk in _classes(worker.errors, worker.errors.BatonError):
        code = getattr(sdk, "code", None)
        if code in {c.value for c in ErrorCode} and code != ErrorCode.INTERNAL:
            assert sdk.retryable == (ErrorCode(code) in RETRYABLE_CODES), sdk.__name__


@pytest.mark.parametrize("exc", [TimeoutError(), ConnectionRefusedError(111, "refused")])
def test_a_region_database_that_cannot_serve_says_why_and_what_to_check(
    exc: Exception,
) -> None:
    """A connect that timed out said only "region database unavailable: "."""
    with pytest.raises(Unavailable) as err, wrap_exceptions():
        raise exc
    assert type(exc).__name__ in err.value.message
    assert "dsn" in err.value.message
    assert err.value.__cause__ is exc
