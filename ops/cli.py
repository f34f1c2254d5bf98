"""The ``baton`` command line.

::

    baton dev up|down|status                 the local stack (ops.devstack)
    baton server --region R                  one region server, in the foreground
    baton migrate up|status                  schema migrations of region databases
    baton namespace create|describe|list
    baton workflow start|signal-with-start|describe|history|result|list
    baton workflow signal|query|update|cancel|terminate|reset|count|pause|unpause
    baton schedule create|update|list|describe|pause|unpause|trigger|backfill|delete

Global options pick the config file (``--config``, else ``$BATON_CONFIG``, else
``$BATON_HOME/baton.toml`` when ``$BATON_HOME`` is set, else
``.baton/baton.toml``), the namespace (``-n``, ``$BATON_NAMESPACE``) and
optionally one region to talk to (else every region's URL: the client follows
the namespace to its active region). Every command takes ``--output
table|json``; errors print ``error [CODE]: message`` on stderr (or a JSON
error document on stdout) and exit with status 1, a command line that cannot
run (a missing argument, options that do not go together) with status 2 and
code ``USAGE_ERROR``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import click

from ops.cli_activity_complete import register_activity_complete
from ops.cli_base import (
    CLI_RETRY_S,
    REQUEST_TIMEOUT_ENV,
    REQUEST_TIMEOUT_S,
    BatonCommand,
    BatonGroup,
    CliInputError,
    CliState,
    Seconds,
    ServerFailedError,
    given,
    pass_state,
    remember_output,
)
from ops.cli_batch import register_batch
from ops.cli_namespace import register_namespace
from ops.cli_pause import register_pause
from ops.cli_replication import register_replication
from ops.cli_schedules import register_schedules
from ops.cli_stack import register_stack
from ops.cli_task_queue import register_task_queue
from ops.cli_tools import register_tools
from ops.cli_versioning import register_versioning
from ops.cli_visibility import register_visibility
from ops.cli_workflow import register_workflow
from ops.cli_workflow_actions import register_workflow_actions
from ops.output import OUTPUT_CHOICES

__all__ = [
    "CLI_RETRY_S",
    "BatonCommand",
    "BatonGroup",
    "CliInputError",
    "CliState",
    "ServerFailedError",
    "cli",
    "main",
    "pass_state",
]

# aiokafka logs a connection it could not open itself; a command reports the
# failure as its own typed error (KAFKA_UNAVAILABLE, UNAVAILABLE), so where
# nothing configured logging (every command but `baton server`) that record
# would reach stderr beside it through logging's last resort.
logging.getLogger("aiokafka").addHandler(logging.NullHandler())


# --------------------------------------------------------------------------- root


@click.group(cls=BatonGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (else $BATON_CONFIG, $BATON_HOME/baton.toml, .baton/baton.toml).",
)
@click.option(
    "--namespace",
    "-n",
    envvar="BATON_NAMESPACE",
    default="default",
    show_default=True,
    callback=given("a namespace name, or leave the option out for `default`"),
    help="Namespace to act in ($BATON_NAMESPACE).",
)
@click.option(
    "--region",
    default=None,
    callback=given("a region name, or leave the option out for every region's server"),
    help="Send requests to this region's server (default: every region's). A "
    "write it refuses because the namespace is active elsewhere still follows it there.",
)
@click.option(
    "--request-timeout",
    "request_timeout_s",
    type=Seconds(),
    envvar=REQUEST_TIMEOUT_ENV,
    default=REQUEST_TIMEOUT_S,
    show_default=True,
    help="Seconds a server may take to answer one request (beyond a wait the command asks "
    "for, as `workflow result` does); also bounds the retries of a server that cannot be "
    f"reached. A server that does not answer in time is UNAVAILABLE (${REQUEST_TIMEOUT_ENV}). "
    "Commands that open region databases themselves (failover, replication, namespace "
    "add-region) wait at most this long, and at most 10 s, for each to take a connection.",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(OUTPUT_CHOICES),
    default=None,
    callback=remember_output,
    expose_value=False,
    is_eager=True,
    help="Default of every command's --output (which overrides it).",
)
@click.version_option("0.1.0", prog_name="baton")
@click.pass_context
def cli(
    ctx: click.Context,
    config: str | None,
    namespace: str,
    region: str | None,
    request_timeout_s: float,
) -> None:
    """Baton: a durable-execution workflow store that survives the loss of a region."""
    ctx.obj = CliState(
        config=config, namespace=namespace, region=region, request_timeout_s=request_timeout_s
    )


# --------------------------------------------------------------------------- registration

register_stack(cli)
register_namespace(cli)
register_workflow(cli)
register_workflow_actions(cli)
register_visibility(cli)
register_batch(cli)
register_versioning(cli)
register_pause(cli)
register_activity_complete(cli)
register_schedules(cli)
register_tools(cli)
register_replication(cli)
register_task_queue(cli)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI (the ``baton`` console script)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="baton")


if __name__ == "__main__":
    main()
