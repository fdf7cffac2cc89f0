"""The Redis ledger as production runs it: over TLS, through a Sentinel, on a three-node Cluster.
Each is real redis-server processes on 127.0.0.1, and two ledgers on one URL stand for two proxy
replicas: 200 concurrent admissions from both admit exactly what the budget and the rate limit
allow, and the charges settle to the cent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from runtime.ledger.base import LedgerError, Reserved
from runtime.ledger.redis import RedisLedger
from runtime.ledger.resp import demoted
from runtime.ratelimit.limits import LimitSpec, Rate
from runtime.ratelimit.outcome import Limited
from tests.runtime.test_ledger import USD, slot
from tests.support.redis_server import RedisServer
from tests.support.redis_topologies import RedisCluster, RedisSentinel, tls_files

NOW = 1_780_000_000.0


def assert_exact_across_two_replicas(url: str) -> None:
    """A $1 budget and 200 requests of 1/40 each admit 40; a 50-a-minute limit and 200 more admit
    50; settling the 40 at 1/80 each charges exactly $0.50."""
    replicas = [RedisLedger(url), RedisLedger(url)]
    per_minute = LimitSpec("eng-rpm", requests=Rate(50, 60))

    async def run() -> tuple[list[object], list[object]]:
        budgeted = await asyncio.gather(*(
            replicas[n % 2].reserve_async(f"b{n}", [slot()], USD // 40) for n in range(200)))
        limited = await asyncio.gather(*(
            replicas[n % 2].admit_async(f"l{n}", [], 0, [per_minute], 0, NOW) for n in range(200)))
        admitted = [r for r in budgeted if isinstance(r, Reserved)]
        await asyncio.gather(*(
            replicas[n % 2].settle_async(r.reservation_id, USD // 80, "usage") for n, r in enumerate(admitted)))
        for ledger in replicas:
            await ledger.aclose()
        return list(budgeted), list(limited)

    budgeted, limited = asyncio.run(run())
    assert sum(isinstance(r, Reserved) for r in budgeted) == 40
    assert sum(isinstance(r, Reserved) for r in limited) == 50
    assert all(isinstance(r, Limited) for r in limited if not isinstance(r, Reserved))
    [row] = replicas[1].counters()
    assert (row.spent, row.reserved) == (40 * (USD // 80), 0)
    assert replicas[0].limit_usage(NOW)[0].requests_used == pytest.approx(50)
    for ledger in replicas:
        ledger.close()


def test_tls_budgets_and_limits_are_exact_across_two_replicas(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis", tls=tls_files(tmp_path / "tls")) as server:
        assert server.url.startswith("rediss://")
        assert_exact_across_two_replicas(server.url)


def test_tls_refuses_a_server_whose_certificate_its_ca_did_not_sign(tmp_path: Path) -> None:
    other_ca = tls_files(tmp_path / "other", "other")["ca"]
    with RedisServer(tmp_path / "redis", tls=tls_files(tmp_path / "tls")) as server:
        with pytest.raises(LedgerError, match="cannot reach the Redis ledger at rediss://127.0.0.1"):
            RedisLedger(f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={other_ca}")
        unverified = RedisLedger(f"rediss://127.0.0.1:{server.port}/0?ssl_cert_reqs=none")
        assert isinstance(unverified.reserve("r1", [slot()], 5), Reserved)
        unverified.close()


def test_sentinel_budgets_and_limits_are_exact_across_two_replicas(tmp_path: Path) -> None:
    with RedisSentinel(tmp_path / "sentinel") as sentinel:
        assert sentinel.master is not None
        assert_exact_across_two_replicas(sentinel.url)
        on_master = redis.Redis(host="127.0.0.1", port=sentinel.master.port, decode_responses=True)
        assert on_master.scard("gp:counters") == 1


def test_after_a_sentinel_failover_the_ledger_follows_the_new_master_with_its_counters(tmp_path: Path) -> None:
    """A real failover (SENTINEL FAILOVER), then the old master demoted as the sentinel demotes it
    (REPLICAOF the new master, its clients' connections closed). The ledger runs on its event loop
    throughout, as a proxy does: admissions and settles after the demotion, on the request path
    and on the tending client, reach the new master with no error, and every charge is there.
    Calls in flight at the switch may fail (a 503, a deferred settle): the first admission after
    the kill may be sent before the loop has read the killed connection's end, and is then retried
    once, as a client retries that 503 (a killed connection never ran it). Writes the old master
    took between the promotion and its demotion are lost with it, as with any Sentinel client."""
    per_minute = LimitSpec("eng-rpm", requests=Rate(50, 60))
    with RedisSentinel(tmp_path / "sentinel", replica=True) as sentinel:
        ledger = RedisLedger(sentinel.url)
        assert sentinel.master is not None

        async def run() -> int:
            assert isinstance(await ledger.reserve_async("r1", [slot()], 10), Reserved)
            assert await ledger.settle_async("r1", 7, "usage") is not None
            assert isinstance(await ledger.reserve_async("r2", [slot()], 10), Reserved)
            assert isinstance(ledger.reserve("s1", [slot()], 10), Reserved)
            old_master = redis.Redis(host="127.0.0.1", port=sentinel.master.port)  # type: ignore[union-attr]
            assert old_master.wait(1, 1000) >= 1
            new_master = await asyncio.to_thread(sentinel.fail_over)
            await asyncio.to_thread(sentinel.demote_old_master)
            try:
                admitted = await ledger.admit_async("r3", [slot()], 10, [per_minute], 0, NOW)
            except LedgerError:
                admitted = await ledger.admit_async("r3", [slot()], 10, [per_minute], 0, NOW)
            assert isinstance(admitted, Reserved)
            assert await ledger.settle_async("r2", 5, "usage") is not None
            assert await ledger.settle_async("r3", 4, "usage") is not None
            assert ledger.settle("s1", 3, "usage") is not None
            assert isinstance(ledger.admit("s2", [slot()], 10, [per_minute], 0, NOW), Reserved)
            assert ledger.settle("s2", 2, "usage") is not None
            await ledger.aclose()
            return new_master

        new_master = asyncio.run(run())
        on_new_master = redis.Redis(host="127.0.0.1", port=new_master, decode_responses=True)
        assert on_new_master.hget("gp:c:eng-daily|2026-11-24", "spent") == str(7 + 5 + 4 + 3 + 2)
        assert on_new_master.hget("gp:c:eng-daily|2026-11-24", "reserved") == "0"
        assert on_new_master.llen("gp:charges") == 5
        assert redis.Redis(host="127.0.0.1", port=sentinel.master.port).role()[0] == b"slave"
        ledger.close()


def test_readonly_counts_as_a_demoted_master_plain_or_inside_a_script_error() -> None:
    """Redis 7 answers a script's refused write with READONLY itself; Redis 6 and earlier wrap it
    in the script's error. An ordinary script error is the call's answer."""
    assert demoted("READONLY You can't write against a read only replica. script: 50f2ee7c, on @user_script:140.")
    assert demoted("ERR Error running script (call to f_50f2ee7c): @user_script:12: @user_script: 12: "
                   "-READONLY You can't write against a read only replica.")
    assert not demoted("ERR user_script:9: ledger value is not a non-negative integer: -1 script: 50f2ee7c")
    assert not demoted("MOVED 1234 127.0.0.1:7001")


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    with RedisCluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def cluster(shared_cluster: RedisCluster) -> RedisCluster:
    """The module's three-node cluster (a cluster takes seconds to form), emptied for each test."""
    for node in shared_cluster.nodes:
        redis.Redis(host="127.0.0.1", port=node.port).flushall()
    return shared_cluster


def test_cluster_budgets_and_limits_are_exact_across_two_replicas(cluster: RedisCluster) -> None:
    assert_exact_across_two_replicas(cluster.url)


def test_on_a_cluster_every_ledger_key_hashes_to_one_slot(cluster: RedisCluster) -> None:
    """The scripts touch counters, limits, reservations and the sets that list them: one hash tag
    puts them all on one node, so each script is one atomic step there. The URL's seeds do not
    serve that slot: the connection follows their MOVED to the node that does."""
    ledger = RedisLedger(cluster.url)
    owner = redis.Redis(host="127.0.0.1", port=cluster.nodes[2].port)
    assert f":{cluster.nodes[2].port}" not in cluster.url
    per_minute = LimitSpec("eng-rpm", requests=Rate(50, 60))
    assert isinstance(ledger.admit("r1", [slot("eng-daily"), slot("org-monthly")], 5, [per_minute], 0, NOW),
                      Reserved)
    assert isinstance(ledger.reserve("r2", [], 5), Reserved)
    keys = [key for node in cluster.nodes
            for key in redis.Redis(host="127.0.0.1", port=node.port, decode_responses=True).keys("*")]
    assert len(keys) >= 8 and all(str(key).startswith("{gp}:") for key in keys)
    assert {key_slot(str(key).encode()) for key in keys} == {key_slot(b"{gp}:")}
    assert owner.dbsize() == len(keys), "all on the third node, which the URL does not list"
    assert ledger.settle("r1", 3, "usage") is not None
    assert {row.instance: row.spent for row in ledger.counters()} == {"eng-daily": 3, "org-monthly": 3}
    ledger.close()


def test_reachable_answers_a_ping_and_says_false_once_redis_is_gone(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        ledger = RedisLedger(server.url)

        async def ask() -> bool:
            return await ledger.reachable()

        async def ask_after_stop() -> tuple[bool, bool]:
            before = await ledger.reachable()
            server.__exit__()
            after = await ledger.reachable()
            await ledger.aclose()
            return before, after

        assert asyncio.run(ask()) is True
        assert asyncio.run(ask_after_stop()) == (True, False)
