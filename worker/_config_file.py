"""The region URLs of a Baton config file, found as the `baton` CLI finds it."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from worker.errors import InvalidArgumentError

#: Where the CLI and the SDK look, in this order, when no path is given.
CONFIG_ENV = "BATON_CONFIG"
HOME_ENV = "BATON_HOME"
CONFIG_NAME = "baton.toml"


def config_file(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``$BATON_CONFIG``, else ``$BATON_HOME/baton.toml``, else
    ``.baton/baton.toml`` under the current directory."""
    if path:
        return Path(path)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]) / CONFIG_NAME
    return Path(".baton") / CONFIG_NAME


def endpoints_from_config(path: str | os.PathLike[str] | None = None) -> list[str]:
    """Every region's URL from a Baton config file (``path``, else ``$BATON_CONFIG``,
    else ``$BATON_HOME/baton.toml``, else ``.baton/baton.toml``, as the CLI reads).

    Raises:
        InvalidArgumentError: no such file, not TOML, or no region with a URL in it.
    """
    p = config_file(path)
    try:
        with p.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise InvalidArgumentError(
            f"no Baton config file at {p}: bring the local stack up with `baton dev up`, "
            f"set ${CONFIG_ENV} (or ${HOME_ENV}, the stack's folder) to where it is, "
            "or pass the region URLs to Client.connect"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgumentError(f"Baton config {p} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read Baton config {p}: {exc}") from None
    regions = raw.get("regions")
    urls = []
    if isinstance(regions, dict):
        for name, region in regions.items():
            url = region.get("url") if isinstance(region, dict) else None
            if not isinstance(url, str) or not url.strip():
                raise InvalidArgumentError(
                    f"region {name!r} in Baton config {p} has no url: give it "
                    f'url = "http://HOST:PORT"'
                )
            urls.append(url)
    if not urls:
        raise InvalidArgumentError(
            f"Baton config {p} names no region: add a [regions.NAME] table with "
            'url = "http://HOST:PORT"'
        )
    return urls
