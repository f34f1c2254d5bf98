"""The root's options (``-n``, ``--region``, ``--config``, ``--request-timeout``)
taken after a command too, as Temporal's CLI takes them: ``baton workflow list
-n payments`` as ``baton -n payments workflow list``.

A command that has an option of the same spelling of its own (``replication
status --namespace``, ``replication dlq list --region``) keeps its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ops.cli_base import CliState, Seconds, given

__all__ = ["global_options"]


def _set(
    attr: str, check: Callable[[click.Context, click.Parameter, Any], Any] | None = None
) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None:
            return
        if check is not None:
            value = check(ctx, param, value)
        state = ctx.find_object(CliState)
        if state is not None:
            setattr(state, attr, value)

    return callback


def global_options(taken: set[str]) -> list[click.Option]:
    """The root's options a command does not spell itself (``taken``: the
    option strings it has)."""
    options = [
        click.Option(
            ["--namespace", "-n", "global_namespace"],
            default=None,
            expose_value=False,
            callback=_set(
                "namespace", given("a namespace name, or leave the option out for `default`")
            ),
            help="Namespace to act in (as `baton -n NS ...`).",
        ),
        click.Option(
            ["--region", "global_region"],
            default=None,
            expose_value=False,
            callback=_set(
                "region",
                given("a region name, or leave the option out for every region's server"),
            ),
            help="Send requests to this region's server (as `baton --region R ...`).",
        ),
        click.Option(
            ["--config", "global_config"],
            type=click.Path(dir_okay=False),
            default=None,
            expose_value=False,
            callback=_set("config"),
            help="Config file (as `baton --config FILE ...`).",
        ),
        click.Option(
            ["--request-timeout", "global_request_timeout_s"],
            type=Seconds(),
            default=None,
            expose_value=False,
            callback=_set("request_timeout_s"),
            help="Seconds a server may take to answer one request (as `baton "
            "--request-timeout S ...`).",
        ),
    ]
    return [o for o in options if not (set(o.opts) & taken)]
