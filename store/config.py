"""The Baton configuration file (TOML) as the server reads it.

One file describes every region of a deployment; each server is told which
region it is. Workers, clients and the CLI read the same file (the SDK reads
only the region URLs, see ``worker.endpoints_from_config``).

```toml
[baton]
max_payload_bytes = 2097152
failover_version_increment = 100

[kafka]
bootstrap = "127.0.0.1:19092"

[regions.region-a]
url = "http://127.0.0.1:17233"
dsn = "postgresql://postgres@127.0.0.1:15432/baton_region_a"
initial_version = 1
```
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from store.errors import InvalidArgument, UnknownRegion
from worker._config_file import config_file

T = TypeVar("T")
DEFAULT_MAX_PAYLOAD = 2 * 1024 * 1024


@dataclass(frozen=True)
class RegionConfig:
    """One region of the deployment."""

    name: str
    """Region name, e.g. ``region-a``."""
    url: str
    """Base URL of the region's API (any of its servers, or a load balancer)."""
    dsn: str
    """libpq URL of the region's PostgreSQL database."""
    initial_version: int
    """The region's initial failover version (1, 2, ...): unique per region."""

    @property
    def host(self) -> str:
        return urlparse(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parsed = urlparse(self.url)
        return parsed.port or (443 if parsed.scheme == "https" else 80)


@dataclass(frozen=True)
class BatonConfig:
    """A whole deployment: its regions and shared settings."""

    regions: dict[str, RegionConfig]
    """Every region by name."""
    failover_version_increment: int = 100
    """Shared increment of failover versions; larger than the number of regions."""
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD
    """Largest single payload the API accepts."""
    kafka_bootstrap: str | None = None
    """Kafka bootstrap servers for replication (None: replication off)."""
    kafka_max_message_bytes: int = 1_000_000
    """Largest replication message to send (``[kafka] max_message_bytes``): keep it
    under the topics' max.message.bytes (Kafka's default is 1048588). Larger
    parts travel by reference."""
    kafka_publish_gather_ms: float = 10.0
    """How long the publisher, woken by a commit, waits for more writes before it
    reads the outbox (``[kafka] publish_gather_ms``, 0 to 1000): a run's writes
    within it ship as one message. It adds at most this much to the lag."""
    workflow_task_retry_max_s: float = 600.0
    """Longest pause between attempts of a workflow task that keeps failing (ten
    minutes, as in Temporal): a wedged run writes its failures into its history
    rarely, and a worker new to the run's task queue makes the retry due at once
    (store/tasks.py), so a fixed worker does not wait it out."""
    suggest_continue_as_new_events: int = 10_240
    """History length at which workers are told continue-as-new is suggested
    (and ``describe`` warns)."""
    history_events_max: int = 51_200
    """History length past which a run is terminated at its next workflow task."""
    history_bytes_warn: int = 10 * 1024 * 1024
    """History size (bytes) at which ``describe`` warns."""
    history_bytes_max: int = 50 * 1024 * 1024
    """History size past which a run is terminated at its next workflow task."""
    signals_per_run_max: int = 10_000
    """Signals one run accepts; more get ``LIMIT_EXCEEDED``."""
    buffered_inputs_max: int = 1_000
    """Inputs waiting behind one started workflow task; past it the task is failed
    and they are written, so a flood never grows one run's buffer without bound."""
    updates_in_flight_max: int = 100
    """Updates of one run requested or accepted and not yet completed."""
    run_cache_runs: int = 10_000
    """Runs each server process remembers as it last wrote them, so that their
    next task completion writes without reading them first (0: always read)."""
    retention_sweep_interval_s: float = 60.0
    """Pause between the retention sweeper's passes."""
    test_clock: bool = False
    """Let ``POST /v1/clock/advance`` move the server's clock forward (tests only)."""
    connect_timeout_s: float = 10.0
    """How long opening a connection to a region database may take before an
    operator command (failover, migration, verify, dead letters) counts the
    region unreachable and says so; asyncpg's own default is a minute. The CLI
    lowers it to ``--request-timeout`` when that is shorter."""
    db_acquire_timeout_s: float = 5.0
    """How long a server's request waits for a connection of its pool before it
    answers 503 UNAVAILABLE (a database that is stuck, or every connection held
    by requests it has not answered)."""
    db_statement_timeout_s: float = 10.0
    """How long one statement of a server may take before it is cancelled and
    its request answers 503 UNAVAILABLE, where a stuck database (a stopped host,
    a lock held by a session that never ends) held the request until its client
    gave up."""
    path: Path | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def region(self, name: str) -> RegionConfig:
        try:
            return self.regions[name]
        except KeyError:
            known = ", ".join(sorted(self.regions)) or "none"
            raise UnknownRegion(f"unknown region {name!r}; the config has: {known}") from None

    def check_namespace_regions(self, regions: list[str], active: str) -> None:
        """Raise InvalidArgument unless a namespace can have ``regions``, active
        in ``active``: the server checks its create so, and the CLI before sending it."""
        for r in [*regions, active]:
            self.region(r)
        if len(set(regions)) != len(regions):
            twice = sorted({r for r in regions if regions.count(r) > 1})
            raise InvalidArgument(f"regions {regions} name {', '.join(twice)} more than once")
        if active not in regions:
            raise InvalidArgument(f"active region {active!r} is not among regions {regions}")


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where the config file is: the argument, $BATON_CONFIG, $BATON_HOME/baton.toml
    or .baton/baton.toml (as the SDK's ``endpoints_from_config`` looks)."""
    return config_file(explicit)


def load_config(path: str | os.PathLike[str] | None = None) -> BatonConfig:
    """Read and check the config file."""
    p = config_path(path)
    if not p.exists():
        raise InvalidArgument(
            f"no Baton config at {p}: run `baton dev up` for a local stack, or pass --config"
        )
    with p.open("rb") as fh:
        try:
            raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidArgument(f"config {p} is not valid TOML: {exc}") from None
    return parse_config(raw, path=p)


#: The keys each table of the config takes: any other is a typo, refused by
#: name rather than left to fall back silently to a default.
BATON_KEYS = frozenset(
    {
        "failover_version_increment",
        "max_payload_bytes",
        "workflow_task_retry_max_s",
        "suggest_continue_as_new_events",
        "history_events_max",
        "history_bytes_warn",
        "history_bytes_max",
        "signals_per_run_max",
        "buffered_inputs_max",
        "updates_in_flight_max",
        "run_cache_runs",
        "retention_sweep_interval_s",
        "test_clock",
        "db_acquire_timeout_s",
        "db_statement_timeout_s",
    }
)
KAFKA_KEYS = frozenset({"bootstrap", "max_message_bytes", "publish_gather_ms"})
REGION_KEYS = frozenset({"url", "dsn", "initial_version"})
SECTIONS = frozenset({"baton", "kafka", "regions"})
#: Settings that may be 0 (0 turns the run cache off); every other count is at least 1.
ZERO_ALLOWED = frozenset({"run_cache_runs"})


def _check_keys(table: dict[str, Any], known: frozenset[str], where: str) -> None:
    for key in table:
        if key in known:
            continue
        near = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise InvalidArgument(
            f"{where} has no setting {key!r}{hint} It takes: {', '.join(sorted(known))}."
            " Fix or remove it in the config"
        )


def _setting(base: dict[str, Any], key: str, default: T, kind: Callable[[Any], T]) -> T:
    """A number of ``[baton]`` (or ``[kafka]``): an integer (a count or bytes,
    at least 1, or 0 where that means off) or a finite number of seconds above 0.
    """
    table = "[kafka]" if key in KAFKA_KEYS else "[baton]"
    value = base.get(key, default)
    low = 0 if key in ZERO_ALLOWED else 1
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
        what = f"a whole number of at least {low}"
    else:
        ok = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value > 0
        )
        what = "a finite number of seconds above 0"
    if not ok:
        raise InvalidArgument(f"{table} {key} must be {what}, got {value!r} in the config")
    return kind(value)


def _url(name: str, value: object) -> str:
    """A region's ``url``: http(s), a host and a port from 1 to 65535."""
    where = f"[regions.{name}] url"
    if not isinstance(value, str):
        raise InvalidArgument(f'{where} must be a string such as "http://host:port", got {value!r}')
    parsed = urlparse(value)
    try:
        port = parsed.port
    except ValueError:
        port = -1
    if parsed.scheme not in ("http", "https") or not parsed.hostname or port in (-1, 0):
        raise InvalidArgument(
            f"{where} must be http:// or https://, a host and a port from 1 to 65535"
            f' (e.g. "http://127.0.0.1:7233"), got {value!r} in the config'
        )
    return value.rstrip("/")


def _flag(base: dict[str, Any], key: str) -> bool:
    value = base.get(key, False)
    if not isinstance(value, bool):
        raise InvalidArgument(f"[baton] {key} must be true or false, got {value!r} in the config")
    return value


def _gather_ms(kafka: dict[str, Any]) -> float:
    value = kafka.get("publish_gather_ms", 10.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1000:
        raise InvalidArgument(
            f"[kafka] publish_gather_ms must be a number of milliseconds from 0 to 1000,"
            f" got {value!r} in the config"
        )
    return float(value)


def _whole(value: object) -> int:
    """A whole number as TOML writes one (``1``, ``"1"``), not ``1.5`` or ``true``,
    which ``int()`` would take as 1."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{value!r} is not a whole number")
    if not isinstance(value, int | float | str):
        raise TypeError(f"{value!r} is not a whole number")
    return int(value)


def parse_config(raw: dict[str, object], *, path: Path | None = None) -> BatonConfig:
    base = raw.get("baton", {})
    kafka = raw.get("kafka", {})
    regions_raw = raw.get("regions", {})
    if (
        not isinstance(base, dict)
        or not isinstance(kafka, dict)
        or not isinstance(regions_raw, dict)
    ):
        raise InvalidArgument("config sections [baton], [kafka] and [regions.*] must be tables")
    _check_keys(raw, SECTIONS, "the config")
    _check_keys(base, BATON_KEYS, "[baton]")
    _check_keys(kafka, KAFKA_KEYS, "[kafka]")
    regions: dict[str, RegionConfig] = {}
    versions: dict[int, str] = {}
    increment = _setting(base, "failover_version_increment", 100, int)
    for name, r in regions_raw.items():
        if isinstance(r, dict):
            _check_keys(r, REGION_KEYS, f"[regions.{name}]")
        try:
            region = RegionConfig(
                name=name,
                url=_url(name, r["url"]),
                dsn=str(r["dsn"]),
                initial_version=_whole(r["initial_version"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(
                f"region {name!r} needs url, dsn and initial_version in the config: {exc}"
            ) from exc
        if not 0 < region.initial_version < increment:
            raise InvalidArgument(
                f"region {name!r}: initial_version must be between 1 and "
                f"failover_version_increment - 1 ({increment - 1})"
            )
        if region.initial_version in versions:
            raise InvalidArgument(
                f"regions {versions[region.initial_version]!r} and {name!r} share "
                f"initial_version {region.initial_version}; each region needs its own"
            )
        versions[region.initial_version] = name
        regions[name] = region
    return BatonConfig(
        regions=regions,
        failover_version_increment=increment,
        max_payload_bytes=_setting(base, "max_payload_bytes", DEFAULT_MAX_PAYLOAD, int),
        kafka_bootstrap=(str(kafka["bootstrap"]) if kafka.get("bootstrap") else None),
        kafka_max_message_bytes=_setting(kafka, "max_message_bytes", 1_000_000, int),
        kafka_publish_gather_ms=_gather_ms(kafka),
        workflow_task_retry_max_s=_setting(base, "workflow_task_retry_max_s", 600.0, float),
        suggest_continue_as_new_events=_setting(
            base, "suggest_continue_as_new_events", 10_240, int
        ),
        history_events_max=_setting(base, "history_events_max", 51_200, int),
        history_bytes_warn=_setting(base, "history_bytes_warn", 10 * 1024 * 1024, int),
        history_bytes_max=_setting(base, "history_bytes_max", 50 * 1024 * 1024, int),
        signals_per_run_max=_setting(base, "signals_per_run_max", 10_000, int),
        buffered_inputs_max=_setting(base, "buffered_inputs_max", 1_000, int),
        updates_in_flight_max=_setting(base, "updates_in_flight_max", 100, int),
        run_cache_runs=_setting(base, "run_cache_runs", 10_000, int),
        retention_sweep_interval_s=_setting(base, "retention_sweep_interval_s", 60.0, float),
        test_clock=_flag(base, "test_clock"),
        db_acquire_timeout_s=_setting(base, "db_acquire_timeout_s", 5.0, float),
        db_statement_timeout_s=_setting(base, "db_statement_timeout_s", 10.0, float),
        path=path,
    )
