from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, object]]:
    """Each ledger test runs on SQLite in a fresh data directory and on a fresh redis-server."""
    if request.param == "sqlite":
        yield "sqlite", tmp_path / "data"
    else:
        with RedisServer(tmp_path / "redis") as server:
            yield "redis", server.url
