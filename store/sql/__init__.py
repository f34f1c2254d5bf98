"""SQL of the region database: the schema, migrations and named queries.

``queries.sql`` holds every statement the store runs, each after a
``-- name: NAME`` line; :data:`QUERIES` maps names to statements.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

_NAME = re.compile(r"^--\s*name:\s*(\S+)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    """Named statements of a ``.sql`` text, each after its ``-- name: NAME`` line."""
    return _parse(text)


def _parse(text: str) -> dict[str, str]:
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice in queries.sql")
        queries[name] = body.strip().rstrip(";")
    return queries


def sql_dir() -> Path:
    return Path(str(resources.files(__package__)))


def read(name: str) -> str:
    return (sql_dir() / name).read_text()


QUERIES: dict[str, str] = _parse(read("queries.sql"))


def migrations() -> list[tuple[int, str, str]]:
    """Every migration as (version, name, sql), in order."""
    found = []
    for path in sorted((sql_dir() / "migrations").glob("*.sql")):
        number, _, rest = path.stem.partition("_")
        found.append((int(number), rest, path.read_text()))
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1..N without gaps, found {versions}")
    return found


def latest_version() -> int:
    return len(migrations())
