"""What a worker checks before it polls: that its namespace exists.

A worker on a namespace no region has would poll for ever, each poll refused
with ``NAMESPACE_NOT_FOUND``, and run nothing. So it asks for the namespace
once as it starts and refuses to start without it, as Temporal's worker does.
The client's transport asks every endpoint it knows before it says the
namespace is missing (a namespace lives only in its own regions), and a
standby region holding the namespace answers it: that counts as found, the
polls follow ``NAMESPACE_NOT_ACTIVE`` to the active region.

Only the start is checked: a namespace that fails over while the worker runs
is followed by its polls, and the server's own answers to them say what is
wrong if the namespace goes.
"""

from __future__ import annotations

import asyncio
import logging

from worker._http import ns_path
from worker.client import Client
from worker.errors import BatonError, ClientClosedError, NamespaceNotFoundError

log = logging.getLogger("baton.worker")


async def require_namespace(client: Client, stopping: asyncio.Event) -> None:
    """Raise ``NamespaceNotFoundError`` if no endpoint of ``client`` knows its namespace.

    Returns early if ``stopping`` is set first. A server that cannot be
    reached (or answers anything else) is no proof the namespace is missing:
    the worker starts and its polls retry as they always do.
    """
    name = client.namespace
    # executions=false: the namespace only, not a count of its runs
    check = asyncio.ensure_future(client.call("GET", ns_path(name), params={"executions": "false"}))
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait([check, stop], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not check.done():
            check.cancel()
    if check.cancelled():
        return
    try:
        check.result()
    except NamespaceNotFoundError as err:
        endpoints = ", ".join(client.transport.endpoints)
        raise NamespaceNotFoundError(
            f"the worker cannot start: namespace {name!r} does not exist at {endpoints}; "
            f"create it with `baton namespace create {name}`, or connect the client to a "
            "region of the namespace",
            details={**err.details, "namespace": name},
        ) from err
    except ClientClosedError:
        raise
    except BatonError as err:
        log.warning("could not check namespace %r before polling: %s", name, err)


__all__ = ["require_namespace"]
