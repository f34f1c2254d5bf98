"""The configuration file as the server reads it (store/config.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from store.config import (
    DEFAULT_MAX_PAYLOAD,
    BatonConfig,
    RegionConfig,
    config_path,
    load_config,
    parse_config,
)
from store.errors import InvalidArgument
from worker.wire import ErrorCode

TOML = """\
[baton]
max_payload_bytes = 4096
failover_version_increment = 10

[kafka]
bootstrap = "127.0.0.1:19092"

[regions.region-a]
url = "http://127.0.0.1:17233/"
dsn = "postgresql://postgres@127.0.0.1:15432/baton_region_a"
initial_version = 1

[regions.region-b]
url = "http://10.0.0.2:17234"
dsn = "postgresql://postgres@10.0.0.2:15432/baton_region_b"
initial_version = 2
"""


def region(url: str = "http://127.0.0.1:17233", version: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "url": url,
        "dsn": f"postgresql://postgres@db/r{version}",
        "initial_version": version,
        **extra,
    }


def two_regions(**baton: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "regions": {
            "region-a": region("http://127.0.0.1:17233", 1),
            "region-b": region("http://127.0.0.1:17234", 2),
        }
    }
    if baton:
        raw["baton"] = baton
    return raw


# --------------------------------------------------------------------------- parse_config


def test_parse_reads_regions() -> None:
    cfg = parse_config(two_regions())
    assert sorted(cfg.regions) == ["region-a", "region-b"]
    a = cfg.regions["region-a"]
    assert a == RegionConfig(
        name="region-a",
        url="http://127.0.0.1:17233",
        dsn="postgresql://postgres@db/r1",
        initial_version=1,
    )
    assert cfg.regions["region-b"].initial_version == 2


def test_parse_defaults() -> None:
    cfg = parse_config(two_regions())
    assert cfg.max_payload_bytes == 2 * 1024 * 1024 == DEFAULT_MAX_PAYLOAD
    assert cfg.failover_version_increment == 100
    assert cfg.kafka_bootstrap is None
    assert cfg.workflow_task_retry_max_s == 600.0
    assert cfg.path is None


def test_parse_empty_config_has_no_regions() -> None:
    cfg = parse_config({})
    assert cfg.regions == {}
    assert cfg.failover_version_increment == 100


def test_parse_reads_shared_settings_and_kafka() -> None:
    raw = two_regions(max_payload_bytes=4096, failover_version_increment=10)
    raw["kafka"] = {"bootstrap": "k1:9092,k2:9092"}
    cfg = parse_config(raw, path=Path("x.toml"))
    assert cfg.max_payload_bytes == 4096
    assert cfg.failover_version_increment == 10
    assert cfg.kafka_bootstrap == "k1:9092,k2:9092"
    assert cfg.path == Path("x.toml")


@pytest.mark.parametrize("kafka", [{}, {"bootstrap": ""}])
def test_kafka_bootstrap_is_optional(kafka: dict[str, Any]) -> None:
    raw = two_regions()
    raw["kafka"] = kafka
    assert parse_config(raw).kafka_bootstrap is None


def test_parse_strips_a_trailing_slash_from_urls() -> None:
    raw: dict[str, Any] = {"regions": {"a": region("http://h:1/", 1)}}
    assert parse_config(raw).regions["a"].url == "http://h:1"


@pytest.mark.parametrize("missing", ["url", "dsn", "initial_version"])
def test_missing_region_key_is_invalid_argument(missing: str) -> None:
    r = region()
    del r[missing]
    needs = "region 'region-a' needs url, dsn and initial_version"
    with pytest.raises(InvalidArgument, match=needs) as exc:
        parse_config({"regions": {"region-a": r}})
    assert missing in str(exc.value)
    assert exc.value.code == ErrorCode.INVALID_ARGUMENT


def test_region_that_is_not_a_table_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="region 'a'"):
        parse_config({"regions": {"a": "http://h:1"}})


def test_non_integer_initial_version_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="region 'a'"):
        parse_config({"regions": {"a": region(version="one")}})  # type: ignore[arg-type]


@pytest.mark.parametrize("section", ["baton", "kafka", "regions"])
def test_sections_must_be_tables(section: str) -> None:
    with pytest.raises(InvalidArgument, match="must be tables"):
        parse_config({section: "oops"})


def test_duplicate_initial_versions_are_refused() -> None:
    raw: dict[str, Any] = {
        "regions": {"region-a": region(version=3), "region-b": region(version=3)}
    }
    with pytest.raises(InvalidArgument) as exc:
        parse_config(raw)
    msg = str(exc.value)
    assert "'region-a'" in msg and "'region-b'" in msg
    assert "initial_version 3" in msg


@pytest.mark.parametrize(
    ("increment", "version"), [(100, 0), (100, -1), (100, 100), (100, 250), (10, 10)]
)
def test_initial_version_outside_1_to_increment_minus_1(increment: int, version: int) -> None:
    raw = {
        "baton": {"failover_version_increment": increment},
        "regions": {"a": region(version=version)},
    }
    with pytest.raises(InvalidArgument, match=rf"between 1 and .*\({increment - 1}\)"):
        parse_config(raw)


@pytest.mark.parametrize(("increment", "version"), [(100, 1), (100, 99), (10, 9)])
def test_initial_version_at_the_edges_is_accepted(increment: int, version: int) -> None:
    raw = {
        "baton": {"failover_version_increment": increment},
        "regions": {"a": region(version=version)},
    }
    assert parse_config(raw).regions["a"].initial_version == version


@pytest.mark.parametrize(
    "baton",
    [{"failover_version_increment": "lots"}, {"max_payload_bytes": "big"}],
)
def test_malformed_shared_setting_is_invalid_argument(baton: dict[str, Any]) -> None:
    # A typo in the [baton] table should read like every other config error,
    # not as a bare ValueError traceback.
    with pytest.raises(InvalidArgument):
        parse_config(two_regions(**baton))


# --------------------------------------------------------------------------- BatonConfig


def test_region_lookup() -> None:
    cfg = parse_config(two_regions())
    assert cfg.region("region-b").url == "http://127.0.0.1:17234"


def test_unknown_region_lists_the_known_ones() -> None:
    cfg = parse_config(two_regions())
    with pytest.raises(InvalidArgument, match="unknown region 'region-z'") as exc:
        cfg.region("region-z")
    assert "region-a, region-b" in str(exc.value)


def test_unknown_region_in_an_empty_config() -> None:
    with pytest.raises(InvalidArgument, match="none"):
        BatonConfig(regions={}).region("a")


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("http://127.0.0.1:17233", "127.0.0.1", 17233),
        ("http://baton-a.internal:8080/", "baton-a.internal", 8080),
        ("http://[::1]:9000", "::1", 9000),
        ("http://baton-a.internal", "baton-a.internal", 80),
        ("https://baton-a.example.com", "baton-a.example.com", 443),
    ],
)
def test_region_host_and_port_come_from_the_url(url: str, host: str, port: int) -> None:
    rc = parse_config({"regions": {"a": region(url)}}).region("a")
    assert rc.host == host
    assert rc.port == port


# --------------------------------------------------------------------------- files


def test_load_config_reads_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "baton.toml"
    path.write_text(TOML)
    cfg = load_config(path)
    assert cfg.path == path
    assert cfg.max_payload_bytes == 4096
    assert cfg.failover_version_increment == 10
    assert cfg.kafka_bootstrap == "127.0.0.1:19092"
    assert cfg.region("region-a").url == "http://127.0.0.1:17233"
    assert cfg.region("region-a").port == 17233
    assert cfg.region("region-b").host == "10.0.0.2"


def test_load_config_on_a_missing_file_names_baton_dev_up(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "baton.toml"
    with pytest.raises(InvalidArgument) as exc:
        load_config(missing)
    assert "`baton dev up`" in str(exc.value)
    assert str(missing) in str(exc.value)


def test_config_path_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BATON_CONFIG", raising=False)
    assert config_path() == Path(".baton") / "baton.toml"
    monkeypatch.setenv("BATON_CONFIG", str(tmp_path / "env.toml"))
    assert config_path() == tmp_path / "env.toml"
    assert config_path(tmp_path / "arg.toml") == tmp_path / "arg.toml"


def test_load_config_uses_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env.toml"
    path.write_text(TOML)
    monkeypatch.setenv("BATON_CONFIG", str(path))
    assert load_config().path == path


def test_publish_gather_defaults_to_10_ms_and_reads_the_kafka_section() -> None:
    raw = two_regions()
    assert parse_config(raw).kafka_publish_gather_ms == 10.0
    raw["kafka"] = {"publish_gather_ms": 0}
    assert parse_config(raw).kafka_publish_gather_ms == 0.0
    raw["kafka"] = {"publish_gather_ms": 2.5}
    assert parse_config(raw).kafka_publish_gather_ms == 2.5


@pytest.mark.parametrize("value", [-1, 1001, "10", True, None])
def test_publish_gather_outside_0_to_1000_ms_is_invalid_argument(value: object) -> None:
    raw = two_regions()
    raw["kafka"] = {"publish_gather_ms": value}
    with pytest.raises(InvalidArgument, match=r"publish_gather_ms .* from 0 to 1000"):
        parse_config(raw)


# --------------------------------------------------------------------------- strictness


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (two_regions(retention_sweep_intervl_s=5), "'retention_sweep_interval_s'"),
        (two_regions(max_payload_byte=4096), "'max_payload_bytes'"),
        ({**two_regions(), "kafka": {"bootstrapp": "h:9092"}}, "'bootstrap'"),
        ({"regions": {"a": region(dns="postgresql://db/x")}}, "'dsn'"),
        ({**two_regions(), "regoins": {}}, "'regions'"),
    ],
)
def test_a_misspelt_key_is_refused_by_name(raw: dict[str, Any], named: str) -> None:
    # A typo fell back to the default without a word: an operator who set the
    # sweep interval (or the payload limit) ran with another value than written.
    with pytest.raises(InvalidArgument, match=f"did you mean {named}"):
        parse_config(raw)


@pytest.mark.parametrize(
    "baton",
    [
        {"run_cache_runs": -5},
        {"max_payload_bytes": 0},
        {"max_payload_bytes": 1.5},
        {"signals_per_run_max": True},
        {"history_events_max": -1},
        {"retention_sweep_interval_s": 0},
        {"retention_sweep_interval_s": -60},
        {"retention_sweep_interval_s": float("nan")},
        {"retention_sweep_interval_s": float("inf")},
        {"workflow_task_retry_max_s": "10"},
    ],
)
def test_an_out_of_range_setting_is_refused_by_name(baton: dict[str, Any]) -> None:
    # A zero sweep interval spun the sweeper without a pause, a negative cache
    # size or limit and a fractional byte count were taken as given.
    (key,) = baton
    with pytest.raises(InvalidArgument, match=rf"\[baton\] {key} must be"):
        parse_config(two_regions(**baton))


def test_run_cache_may_be_turned_off_with_zero() -> None:
    assert parse_config(two_regions(run_cache_runs=0)).run_cache_runs == 0


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:99999", "http://127.0.0.1:0", "127.0.0.1:7233", "ftp://h:1", "http://:80"],
)
def test_a_region_url_without_a_usable_port_is_refused_by_name(url: str) -> None:
    # A port out of range was a ValueError traceback from `baton server`.
    with pytest.raises(InvalidArgument, match=r"\[regions\.a\] url must be"):
        parse_config({"regions": {"a": region(url)}})


@pytest.mark.parametrize("version", [1.5, True])
def test_an_initial_version_that_is_not_a_whole_number_is_refused(version: object) -> None:
    # int() took 1.5 and true as region version 1, silently.
    with pytest.raises(InvalidArgument, match="initial_version"):
        parse_config({"regions": {"a": region(version=version)}})  # type: ignore[arg-type]
