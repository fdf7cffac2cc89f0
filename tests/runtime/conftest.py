from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer


@pytest.fixture(params=["sqlite", "front", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, object]]:
    """Each ledger test runs on SQLite in a fresh data directory, on the in-memory front over one,
    and on a fresh redis-server."""
    if request.param in ("sqlite", "front"):
        yield request.param, tmp_path / "data"
    else:
        with RedisServer(tmp_path / "redis") as server:
            yield "redis", server.url
