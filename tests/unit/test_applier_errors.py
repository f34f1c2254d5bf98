"""Which errors the applier retries from its stored offsets instead of dead-lettering."""

from __future__ import annotations

import asyncpg
import pytest

from replication.applier import INFRA_ERRORS, is_infra_error
from store.errors import DATABASE_UNAVAILABLE


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.CrashShutdownError("the database system is in recovery mode"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        ConnectionResetError(),
        asyncpg.InternalClientError("protocol is in an unknown state"),
        asyncpg.ObjectNotInPrerequisiteStateError(
            'database "baton_region_b" is not currently accepting connections'
        ),
    ],
    ids=type,
)
def test_a_database_that_cannot_serve_is_retried_never_dead_lettered(exc: BaseException) -> None:
    # a message applied while the standby's PostgreSQL crashed is good: it must
    # be applied again once the database is back, not set aside
    assert is_infra_error(exc)


def test_the_applier_and_the_api_agree_on_what_an_unavailable_database_is() -> None:
    assert set(DATABASE_UNAVAILABLE) <= set(INFRA_ERRORS)


def test_a_bad_message_is_not_infrastructure() -> None:
    assert not is_infra_error(ValueError("bad message"))
    assert not is_infra_error(asyncpg.UniqueViolationError("dup"))
    # the same SQLSTATE (55000) for anything but a database closed to sessions
    assert not is_infra_error(
        asyncpg.ObjectNotInPrerequisiteStateError('currval of sequence "s" is not yet defined')
    )
