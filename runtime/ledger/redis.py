"""The shared ledger for several replicas: Redis, every reserve and settle one server-side Lua
script, so check-and-reserve is atomic across all proxies that share it.

Keys (prefix `gp:`; `{gp}:` on a Cluster, see `cluster_prefix`): `c:<instance>|<window>` hash per
counter, `counters` set of counter keys, `r:<id>` hash per open reservation, `reservations` set of
ids, `owners` hash owner -> last seen, `charges` list of settled charges (JSON), `l:<instance>` hash
per rate-limit instance, `limits` set of them. Durability is Redis's: run it with `appendonly yes`
(`appendfsync everysec` loses at most a second on a power loss; a killed proxy loses nothing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import hiredis
import orjson
import redis

from ..ratelimit.limits import LimitSpec
from ..ratelimit.outcome import Limited, LimitUsage
from . import redis_limits, redis_url
from .base import Blocked, CounterRow, LedgerError, Reserved, Settled, Slot, SlotState, owner_id, owner_is_dead
from .resp import RespConnection, demoted

PREFIX = "gp:"
REDIS_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException)
"""What redis-py raises when the ledger cannot be reached or refuses (its cluster errors are not RedisErrors)."""

DECIMAL = """
local function norm(v)
  if v == false or v == nil or v == '' then return '0' end
  v = tostring(v)
  if v == '0' then return v end
  if not string.match(v, '^%d+$') then
    local n = tonumber(v)
    if n == nil or n < 0 then error('ledger value is not a non-negative integer: ' .. v) end
    v = string.format('%.0f', n)
  end
  v = string.gsub(v, '^0+', '')
  if v == '' then return '0' end
  return v
end
local function cmp(a, b)
  if #a ~= #b then return (#a < #b) and -1 or 1 end
  if a == b then return 0 end
  for i = 1, #a do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return (x < y) and -1 or 1 end
  end
  return 0
end
local function add(a, b)
  if #a < 16 and #b < 16 then return string.format('%.0f', tonumber(a) + tonumber(b)) end
  local out, carry, i, j = {}, 0, #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local d = carry
    if i > 0 then d = d + string.byte(a, i) - 48 end
    if j > 0 then d = d + string.byte(b, j) - 48 end
    out[#out + 1] = string.char(48 + d % 10)
    carry = (d >= 10) and 1 or 0
    i, j = i - 1, j - 1
  end
  return norm(string.reverse(table.concat(out)))
end
local function sub_floor(a, b)
  if cmp(a, b) <= 0 then return '0' end
  if #a < 16 then return string.format('%.0f', tonumber(a) - tonumber(b)) end
  local out, borrow, i, j = {}, 0, #a, #b
  while i > 0 do
    local d = string.byte(a, i) - 48 - borrow
    if j > 0 then d = d - (string.byte(b, j) - 48) end
    if d < 0 then d, borrow = d + 10, 1 else borrow = 0 end
    out[#out + 1] = string.char(48 + d)
    i, j = i - 1, j - 1
  end
  return norm(string.reverse(table.concat(out)))
end
"""
"""Exact arithmetic on non-negative decimal strings: Redis's Lua has only doubles, which print
1.0004e+14 for $100.04 in pico-USD and lose units above 2^53 (about $9,007)."""

BUDGETS_HEAD = """
local amount = norm(ARGV[1])
local prefix = ARGV[3]
local meta = cjson.decode(ARGV[4])
local out = {}
"""

BUDGETS_CHECK = """
for i = 1, n do
  local m = meta[i]
  local key = KEYS[i]
  local now = redis.call('HMGET', key, 'spent', 'reserved', 'limit', 'block', 'warn')
  if now[3] == false then
    redis.call('HSET', key, 'instance', m[1], 'window', m[2], 'budget', m[3], 'scope', m[4], 'target', m[5],
      'window_kind', m[6], 'limit', m[7], 'block', m[8], 'warn', m[9], 'spent', '0', 'reserved', '0')
    redis.call('SADD', prefix .. 'counters', key)
  elseif now[3] ~= m[7] or now[4] ~= m[8] or now[5] ~= m[9] then
    redis.call('HSET', key, 'limit', m[7], 'block', m[8], 'warn', m[9])
  end
  local spent = norm(now[1])
  local reserved = norm(now[2])
  if cmp(add(spent, reserved), norm(m[8])) >= 0 then
    return {0, i, spent, reserved}
  end
  out[#out + 1] = spent
  out[#out + 1] = reserved
end
"""

BUDGETS_WRITE = """
for i = 1, n do
  redis.call('HSET', KEYS[i], 'reserved', add(out[2 * i], amount))
end
local rid = ARGV[2]
redis.call('HSET', prefix .. 'r:' .. rid, 'owner', ARGV[6], 'created', ARGV[5], 'amount', amount,
  'slots', cjson.encode(n > 0 and {unpack(KEYS, 1, n)} or {}))
redis.call('SADD', prefix .. 'reservations', rid)
"""

RESERVE = DECIMAL + BUDGETS_HEAD + "local n = #KEYS - 1\n" + BUDGETS_CHECK + BUDGETS_WRITE + """
table.insert(out, 1, 1)
return out
"""

ADMIT = DECIMAL + redis_limits.FUNCTIONS + BUDGETS_HEAD + "local n = tonumber(ARGV[7])\n" + redis_limits.CHECK \
    + BUDGETS_CHECK + BUDGETS_WRITE + redis_limits.WRITE + """
local reply = {1, n}
for _, v in ipairs(out) do reply[#reply + 1] = v end
for _, v in ipairs(figs) do reply[#reply + 1] = v end
return reply
"""
"""Budget reservation and rate-limit admission in one script call: every limit is checked, then
every budget, and only then is anything taken (all or nothing, in one round trip)."""

SETTLE = DECIMAL + redis_limits.FUNCTIONS + """
local prefix = ARGV[1]
local rid = ARGV[2]
local rkey = prefix .. 'r:' .. rid
if redis.call('EXISTS', rkey) == 0 then return 0 end
local estimate = norm(redis.call('HGET', rkey, 'amount'))
local amount = estimate
if ARGV[3] ~= '' then amount = norm(ARGV[3]) end
local slots = cjson.decode(redis.call('HGET', rkey, 'slots'))
local out = {}
for i, key in ipairs(slots) do
  local now = redis.call('HMGET', key, 'spent', 'reserved', 'instance', 'window', 'budget', 'scope', 'target',
    'window_kind', 'limit', 'block', 'warn')
  local spent = norm(now[1])
  local reserved = norm(now[2])
  local after_spent = add(spent, amount)
  local left = sub_floor(reserved, estimate)
  redis.call('HSET', key, 'spent', after_spent, 'reserved', left)
  local fields = {}
  for j = 3, 11 do fields[#fields + 1] = now[j] or '' end
  fields[#fields + 1] = spent
  fields[#fields + 1] = reserved
  fields[#fields + 1] = after_spent
  fields[#fields + 1] = left
  out[#out + 1] = table.concat(fields, '\\31')
end
""" + redis_limits.SETTLE_HOLDS + """
redis.call('DEL', rkey)
redis.call('SREM', prefix .. 'reservations', rid)
redis.call('RPUSH', prefix .. 'charges', cjson.encode({id = rid, estimate = estimate, amount = amount, how = ARGV[4],
  settled_at = ARGV[5]}))
return out
"""


class RedisLedger:
    remote = True
    """Network I/O: the proxy reserves and settles through one pipelined connection on its event
    loop (`resp.py`) and tends the ledger (heartbeat, recovery, retries) with redis-py's blocking
    client from a thread, never blocking requests. The URL may name one server (`redis://`,
    `rediss://`, `unix://`), a Sentinel-watched master or a Cluster (`redis_url.py`)."""

    def __init__(self, url: str, stale_after_s: float = 30.0, prefix: str = PREFIX, read_only: bool = False) -> None:
        self.location = redis_url.parse(url)
        self.prefix = cluster_prefix(prefix) if self.location.kind == "cluster" else prefix
        self.read_only = read_only
        self._where = redis_url.safe(url)
        self._aio: tuple[asyncio.AbstractEventLoop, RespConnection] | None = None
        self.owner = owner_id()
        self.stale_after_s = stale_after_s
        try:
            self._r = self.location.client()
            self._r.ping()
            self._reserve = self._r.register_script(RESERVE)
            self._settle = self._r.register_script(SETTLE)
            self._admit = self._r.register_script(ADMIT)
        except (*REDIS_ERRORS, OSError) as exc:
            raise LedgerError(f"cannot reach the Redis ledger at {self._where}: {exc}") from exc
        if not read_only:
            self.heartbeat()

    def _counter_key(self, slot: Slot) -> str:
        return f"{self.prefix}c:{slot.instance}|{slot.window}"

    def heartbeat(self) -> None:
        try:
            self._r.hset(f"{self.prefix}owners", self.owner, time.time())
        except REDIS_ERRORS as exc:
            raise LedgerError(f"ledger heartbeat failed: {exc}") from exc

    def _reserve_args(self, reservation_id: str, slots: list[Slot], amount: int) -> tuple[list[str], list[Any]]:
        """One JSON argument carries every slot's metadata, all strings (cjson would read numbers as doubles).
        The reservation's own key comes last: every script names a key, so a cluster routes it to the
        node that owns the ledger's slot even for a key without budgets."""
        keys = [self._counter_key(s) for s in slots] + [f"{self.prefix}r:{reservation_id}"]
        meta = [[s.instance, s.window, s.budget, s.scope, s.target, s.window_kind, str(s.limit_pico), str(s.block_pico),
                 "" if s.warn_pico is None else str(s.warn_pico)] for s in slots]
        return keys, [str(amount), reservation_id, self.prefix, orjson.dumps(meta), time.time(), self.owner]

    def _settle_args(self, reservation_id: str, actual: int | None, how: str, tokens: int | None = None,
                     now: float | None = None) -> tuple[list[str], list[Any]]:
        keys = [f"{self.prefix}r:{reservation_id}"]
        return keys, [self.prefix, reservation_id, "" if actual is None else str(actual), how, time.time(),
                      "" if tokens is None else str(tokens), repr(time.time() if now is None else now)]

    def _admit_args(self, reservation_id: str, slots: list[Slot], amount: int, limits: list[LimitSpec], tokens: int,
                    now: float) -> tuple[list[str], list[Any]]:
        keys, argv = self._reserve_args(reservation_id, slots, amount)
        keys[len(slots):len(slots)] = [f"{self.prefix}l:{spec.instance}" for spec in limits]
        return keys, [*argv, len(slots), repr(now), str(tokens), redis_limits.spec_json(limits)]

    def admit(self, reservation_id: str, slots: list[Slot], amount: int, limits: list[LimitSpec], tokens: int,
              now: float) -> Reserved | Blocked | Limited:
        """`reserve` and rate-limit admission in one script call: all or nothing."""
        keys, argv = self._admit_args(reservation_id, slots, amount, limits, tokens, now)
        result = self._script("admission", self._admit, keys, argv)
        return _admitted(reservation_id, slots, limits, result)

    async def admit_async(self, reservation_id: str, slots: list[Slot], amount: int, limits: list[LimitSpec],
                          tokens: int, now: float) -> Reserved | Blocked | Limited:
        keys, argv = self._admit_args(reservation_id, slots, amount, limits, tokens, now)
        return _admitted(reservation_id, slots, limits, await self._run("admission", self._admit, keys, argv))

    def limit_usage(self, now: float | None = None) -> list[LimitUsage]:
        """Each rate-limit instance's current use."""
        at = time.time() if now is None else now
        with _parsing("limit usage"), _reaching("limit usage"):
            found = [self._r.hgetall(key) for key in sorted(self._r.smembers(f"{self.prefix}limits"))]
            return sorted((redis_limits.usage(fields, at) for fields in found if fields),  # type: ignore[arg-type]
                          key=lambda u: u.instance)

    def reserve(self, reservation_id: str, slots: list[Slot], amount: int) -> Reserved | Blocked:
        keys, argv = self._reserve_args(reservation_id, slots, amount)
        result = self._script("reserve", self._reserve, keys, argv)
        return _reserved(reservation_id, slots, result)

    def settle(self, reservation_id: str, actual: int | None, how: str, tokens: int | None = None,
               now: float | None = None) -> Settled | None:
        """Charge, settle the limits' tokens to `tokens` (kept when None), give back its slots in flight."""
        keys, argv = self._settle_args(reservation_id, actual, how, tokens, now)
        result = self._script("settle", self._settle, keys, argv)
        return _settled(result)

    def _script(self, what: str, script: Any, keys: list[str], argv: list[Any]) -> Any:
        """One script call on the tending client, sent once more if the server it reached has been
        demoted to a replica (see `resp.demoted`): the client asks the sentinels for the master again.
        (redis-py's Cluster client follows a failed-over node's MOVED itself.)"""
        with _reaching(what):
            try:
                return script(keys=keys, args=argv)
            except (redis.ConnectionError, redis.ResponseError) as exc:
                if self.location.kind == "cluster" or not _refused_as_replica(exc):
                    raise
                self._r.connection_pool.disconnect()
                return script(keys=keys, args=argv)

    def _connection(self) -> RespConnection:
        """This event loop's pipelined connection (an asyncio connection belongs to one loop)."""
        loop = asyncio.get_running_loop()
        if self._aio is None or self._aio[0] is not loop:
            self._aio = (loop, RespConnection(self.location))
        return self._aio[1]

    async def _run(self, what: str, script: Any, keys: list[str], argv: list[Any]) -> Any:
        """EVALSHA, loading the script once if this Redis has not seen it (NOSCRIPT)."""
        connection = self._connection()
        reply = await connection.call("EVALSHA", script.sha, len(keys), *keys, *argv)
        if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
            await connection.call("SCRIPT", "LOAD", script.script)
            reply = await connection.call("EVALSHA", script.sha, len(keys), *keys, *argv)
        if isinstance(reply, hiredis.ReplyError):
            raise LedgerError(f"ledger {what} failed: {reply}")
        return reply

    async def reserve_async(self, reservation_id: str, slots: list[Slot], amount: int) -> Reserved | Blocked:
        keys, argv = self._reserve_args(reservation_id, slots, amount)
        return _reserved(reservation_id, slots, await self._run("reserve", self._reserve, keys, argv))

    async def settle_async(self, reservation_id: str, actual: int | None, how: str, tokens: int | None = None,
                           now: float | None = None) -> Settled | None:
        keys, argv = self._settle_args(reservation_id, actual, how, tokens, now)
        return _settled(await self._run("settle", self._settle, keys, argv))

    async def reachable(self, timeout_s: float = 1.0) -> bool:
        """Whether the ledger answers a PING within `timeout_s` on this loop's connection: what
        `/readyz` reports, probed beside the server and never on a request's path."""
        try:
            reply = await asyncio.wait_for(self._connection().call("PING"), timeout_s)
        except (LedgerError, OSError, TimeoutError):
            return False
        return reply in ("PONG", b"PONG")

    def recover(self, on_settled: Callable[[Settled], None] | None = None) -> int:
        now = time.time()
        try:
            owners = {str(k): float(v) for k, v in self._r.hgetall(f"{self.prefix}owners").items()}
            recovered = 0
            for rid_any in self._r.smembers(f"{self.prefix}reservations"):
                rid = _text(rid_any)
                owner = str(self._r.hget(f"{self.prefix}r:{rid}", "owner") or "")
                if owner and owner != self.owner and owner_is_dead(owner, owners.get(owner, 0.0), now, self.stale_after_s):
                    settled = self.settle(rid, None, "estimate: its process died before settling")
                    if settled is not None:
                        recovered += 1
                        if on_settled is not None:
                            on_settled(settled)
            return recovered
        except REDIS_ERRORS as exc:
            raise LedgerError(f"ledger recovery failed: {exc}") from exc

    def counters(self) -> list[CounterRow]:
        rows = []
        with _parsing("counters"), _reaching("counters"):
            for key in sorted(self._r.smembers(f"{self.prefix}counters")):
                h: dict[str, str] = self._r.hgetall(key)  # type: ignore[assignment]
                rows.append(CounterRow(
                    h["instance"], h["window"], h["budget"], h["scope"], h["target"], h["window_kind"], int(h["limit"]),
                    int(h["block"]), int(h["warn"]) if h.get("warn") else None, _integer(h.get("spent")),
                    _integer(h.get("reserved")),
                ))
        return sorted(rows, key=lambda r: (r.instance, r.window))

    async def aclose(self) -> None:
        """Close this loop's connection, if one was made."""
        if self._aio is not None and self._aio[0] is asyncio.get_running_loop():
            connection, self._aio = self._aio[1], None
            await connection.aclose()

    def close(self) -> None:
        try:
            if not self.read_only:
                self._r.hdel(f"{self.prefix}owners", self.owner)
        except REDIS_ERRORS:
            pass
        self._r.close()


def _reserved(reservation_id: str, slots: list[Slot], result: list[Any]) -> Reserved | Blocked:
    with _parsing("reserve"):
        if int(result[0]) == 0:
            slot = slots[int(result[1]) - 1]
            return Blocked(SlotState(slot, int(result[2]), int(result[3])))
        values = [int(v) for v in result[1:]]
        states = tuple(SlotState(s, values[2 * i], values[2 * i + 1]) for i, s in enumerate(slots))
        return Reserved(reservation_id, states)


def _admitted(reservation_id: str, slots: list[Slot], limits: list[LimitSpec], result: list[Any]
              ) -> Reserved | Blocked | Limited:
    """`{1, n, spent/reserved per budget..., figures per limit...}`, `{0, ...}` blocked, `{2, ...}` limited."""
    with _parsing("admission"):
        status = int(result[0])
        if status == 2:
            return redis_limits.limited(limits, result)
        if status == 0:
            return _reserved(reservation_id, slots, result)
        n = int(result[1])
        values = [int(v) for v in result[2:2 + 2 * n]]
        states = tuple(SlotState(s, values[2 * i], values[2 * i + 1]) for i, s in enumerate(slots))
        return Reserved(reservation_id, states, redis_limits.figures(limits, result[2 + 2 * n:]))


def _settled(result: list[Any] | int) -> Settled | None:
    """One reply line per slot: its nine metadata fields and four counters, joined by \\x1f; 0 when
    there was no such reservation (settled before)."""
    if isinstance(result, int):
        return None
    before, after = [], []
    with _parsing("settle"):
        for line in result:
            m = str(line).split("\x1f")
            slot = Slot(m[0], m[1], m[2], m[3], m[4], m[5], int(m[6]), int(m[7]), int(m[8]) if m[8] else None)
            before.append(SlotState(slot, int(m[9]), int(m[10])))
            after.append(SlotState(slot, int(m[11]), int(m[12])))
    return Settled(tuple(before), tuple(after))


def _refused_as_replica(exc: BaseException) -> bool:
    """READONLY from redis-py: its own error, the ConnectionError its Sentinel client raises in its
    place ("The previous master is now a slave"), or a script error that wraps it."""
    return isinstance(exc, redis.ReadOnlyError) or isinstance(exc.__context__, redis.ReadOnlyError) \
        or demoted(exc)


@contextmanager
def _parsing(what: str) -> Iterator[None]:
    """A reply that does not parse is a ledger fault (503), never an unhandled 500."""
    try:
        yield
    except (ValueError, TypeError, IndexError, KeyError, ArithmeticError) as exc:
        raise LedgerError(f"ledger {what} returned a reply that does not parse: {exc}") from exc


@contextmanager
def _reaching(what: str) -> Iterator[None]:
    try:
        yield
    except REDIS_ERRORS as exc:
        raise LedgerError(f"ledger {what} failed: {exc}") from exc


def _integer(value: object) -> int:
    """A counter as stored: a decimal string; a float-formatted one (written by releases before the
    exact arithmetic, e.g. '1.0004e+14') is read as the integer it stands for."""
    if value is None or value == "":
        return 0
    text = str(value)
    return int(text) if text.isdigit() else int(Decimal(text))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def cluster_prefix(prefix: str) -> str:
    """The prefix as one hash tag (`gp:` -> `{gp}:`): every key of the ledger then hashes to one
    Cluster slot, so each script's keys are on one node and its all-or-nothing admission holds
    (README "One slot for the whole ledger")."""
    if "{" in prefix and "}" in prefix.partition("{")[2]:
        return prefix
    return "{" + prefix.rstrip(":") + "}:"
