"""The ledger's pipelined Redis connection: concurrent calls answered in order, scripts reloaded
when Redis forgot them, AUTH and SELECT from the URL, and a lost server failing calls cleanly and
reconnecting afterwards."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis

from runtime.ledger.base import LedgerError, Reserved
from runtime.ledger.redis import RedisLedger
from runtime.ledger.resp import RespConnection
from tests.runtime.test_ledger import slot
from tests.support.redis_server import RedisServer


def test_concurrent_calls_get_their_own_replies(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        async def main() -> list[object]:
            connection = RespConnection(server.url)
            replies = await asyncio.gather(*(connection.call("ECHO", f"n{i}") for i in range(200)))
            await connection.aclose()
            return list(replies)

        assert asyncio.run(main()) == [f"n{i}" for i in range(200)]


def test_a_script_redis_forgot_is_loaded_again(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        ledger = RedisLedger(server.url)

        async def main() -> None:
            assert isinstance(await ledger.reserve_async("r1", [slot()], 5), Reserved)
            redis.Redis.from_url(server.url).script_flush()
            assert isinstance(await ledger.reserve_async("r2", [slot()], 5), Reserved)
            assert (await ledger.settle_async("r2", 3, "usage")) is not None
            await ledger.aclose()

        asyncio.run(main())
        assert ledger.counters()[0].spent == 3


def test_password_and_database_come_from_the_url(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis", "--requirepass", "s3cret") as server:
        url = f"redis://:s3cret@127.0.0.1:{server.port}/3"
        ledger = RedisLedger(url)

        async def main() -> None:
            assert isinstance(await ledger.reserve_async("r1", [slot()], 5), Reserved)
            await ledger.aclose()

        asyncio.run(main())
        in_db3 = redis.Redis(host="127.0.0.1", port=server.port, password="s3cret", db=3)
        assert in_db3.scard("gp:counters") == 1
        wrong = RespConnection(f"redis://:wrong@127.0.0.1:{server.port}/0")
        with pytest.raises(LedgerError, match="refused AUTH"):
            asyncio.run(wrong.call("PING"))


def test_a_lost_server_fails_the_call_and_the_next_one_reconnects(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as first:
        port, url = first.port, first.url

        async def main() -> None:
            connection = RespConnection(url, timeout_s=2)
            assert await connection.call("PING") == "PONG"
            first.__exit__()
            with pytest.raises(LedgerError):
                await connection.call("PING")
            with RedisServer(tmp_path / "redis2", port=port):
                assert await connection.call("PING") == "PONG"
            await connection.aclose()

        asyncio.run(main())
