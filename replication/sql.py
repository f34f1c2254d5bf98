"""The named queries of replication (replication/queries.sql)."""

from __future__ import annotations

from pathlib import Path

from store.sql import _parse

QUERIES: dict[str, str] = _parse((Path(__file__).parent / "queries.sql").read_text())
