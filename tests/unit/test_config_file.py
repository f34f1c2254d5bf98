"""Where the SDK finds the region URLs: the same file the `baton` CLI reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.config import config_path
from worker import endpoints_from_config
from worker.errors import InvalidArgumentError

TWO_REGIONS = """
[regions.region-a]
url = "http://127.0.0.1:1111"
database = "postgresql:///a"

[regions.region-b]
url = "http://127.0.0.1:2222"
database = "postgresql:///b"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BATON_CONFIG", raising=False)
    monkeypatch.delenv("BATON_HOME", raising=False)
    monkeypatch.chdir(tmp_path)


def test_a_stack_in_baton_home_is_found_as_the_cli_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "stack"
    write(home / "baton.toml", TWO_REGIONS)
    monkeypatch.setenv("BATON_HOME", str(home))
    assert endpoints_from_config() == ["http://127.0.0.1:1111", "http://127.0.0.1:2222"]
    assert config_path() == home / "baton.toml"  # the CLI and the server read the same


def test_the_order_is_argument_then_baton_config_then_baton_home_then_dot_baton(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def one(url: str) -> str:
        return f'[regions.r]\nurl = "{url}"\n'

    write(tmp_path / ".baton" / "baton.toml", one("http://dot"))
    assert endpoints_from_config() == ["http://dot"]
    write(tmp_path / "home" / "baton.toml", one("http://home"))
    monkeypatch.setenv("BATON_HOME", str(tmp_path / "home"))
    assert endpoints_from_config() == ["http://home"]
    monkeypatch.setenv("BATON_CONFIG", str(write(tmp_path / "env.toml", one("http://env"))))
    assert endpoints_from_config() == ["http://env"]
    assert endpoints_from_config(write(tmp_path / "arg.toml", one("http://arg"))) == ["http://arg"]


def test_no_config_file_is_a_typed_error_saying_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        endpoints_from_config()
    assert err.value.code == "INVALID_ARGUMENT"
    assert str(Path(".baton") / "baton.toml") in err.value.message
    assert "baton dev up" in err.value.message and "BATON_HOME" in err.value.message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[regions.r\nurl=", "not valid TOML"),
        ("", "names no region"),
        ("[regions.r]\ndatabase = 'x'\n", "region 'r'"),
        ('[regions.r]\nurl = " "\n', "has no url"),
        ("regions = 3\n", "names no region"),
    ],
)
def test_a_config_without_region_urls_is_a_typed_error(
    tmp_path: Path, text: str, says: str
) -> None:
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(InvalidArgumentError) as err:
        endpoints_from_config(path)
    assert says in err.value.message and str(path) in err.value.message
