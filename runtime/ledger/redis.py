"""The shared ledger for several replicas: Redis, every reserve and settle one server-side Lua
script, so check-and-reserve is atomic across all proxies that share it.

Keys (prefix `gp:`): `c:<instance>|<window>` hash per counter, `counters` set of counter keys,
`r:<id>` hash per open reservation, `reservations` set of ids, `owners` hash owner -> last seen,
`charges` list of settled charges (JSON), `charged:<id>` marker that makes settling idempotent.
Durability is Redis's: run it with `appendonly yes` (`appendfsync everysec` loses at most a
second on a power loss; a killed proxy loses nothing).
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from .base import Blocked, CounterRow, LedgerError, Reserved, Settled, Slot, SlotState, owner_id, owner_is_dead

PREFIX = "gp:"

RESERVE = """
local amount = tonumber(ARGV[1])
local n = #KEYS
local out = {}
for i = 1, n do
  local base = 4 + (i - 1) * 9
  local key = KEYS[i]
  local now = redis.call('HMGET', key, 'spent', 'reserved', 'limit', 'block', 'warn')
  if now[3] == false then
    redis.call('HSET', key, 'instance', ARGV[base], 'window', ARGV[base + 1], 'budget', ARGV[base + 2],
      'scope', ARGV[base + 3], 'target', ARGV[base + 4], 'window_kind', ARGV[base + 5],
      'limit', ARGV[base + 6], 'block', ARGV[base + 7], 'warn', ARGV[base + 8], 'spent', 0, 'reserved', 0)
    redis.call('SADD', ARGV[3] .. 'counters', key)
  elseif now[3] ~= ARGV[base + 6] or now[4] ~= ARGV[base + 7] or now[5] ~= ARGV[base + 8] then
    redis.call('HSET', key, 'limit', ARGV[base + 6], 'block', ARGV[base + 7], 'warn', ARGV[base + 8])
  end
  local spent = tonumber(now[1] or '0')
  local reserved = tonumber(now[2] or '0')
  if spent + reserved >= tonumber(ARGV[base + 7]) then
    return {0, i, tostring(spent), tostring(reserved)}
  end
  out[#out + 1] = tostring(spent)
  out[#out + 1] = tostring(reserved)
end
for i = 1, n do
  redis.call('HINCRBY', KEYS[i], 'reserved', amount)
end
local rid = ARGV[2]
local slots = {}
for i = 1, n do slots[i] = KEYS[i] end
redis.call('HSET', ARGV[3] .. 'r:' .. rid, 'owner', ARGV[#ARGV], 'created', ARGV[#ARGV - 1], 'amount', amount,
  'slots', cjson.encode(slots))
redis.call('SADD', ARGV[3] .. 'reservations', rid)
table.insert(out, 1, 1)
return out
"""

SETTLE = """
local prefix = ARGV[1]
local rid = ARGV[2]
local rkey = prefix .. 'r:' .. rid
if redis.call('EXISTS', rkey) == 0 then return {} end
local estimate = tonumber(redis.call('HGET', rkey, 'amount'))
local amount = tonumber(ARGV[3])
if amount < 0 then amount = estimate end
local slots = cjson.decode(redis.call('HGET', rkey, 'slots'))
local out = {}
for i, key in ipairs(slots) do
  local spent = tonumber(redis.call('HGET', key, 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', key, 'reserved') or '0')
  local left = reserved - estimate
  if left < 0 then left = 0 end
  redis.call('HSET', key, 'spent', spent + amount, 'reserved', left)
  local meta = redis.call('HMGET', key, 'instance', 'window', 'budget', 'scope', 'target', 'window_kind', 'limit',
    'block', 'warn')
  for j = 1, 9 do out[#out + 1] = meta[j] or '' end
  out[#out + 1] = tostring(spent)
  out[#out + 1] = tostring(reserved)
  out[#out + 1] = tostring(spent + amount)
  out[#out + 1] = tostring(left)
end
redis.call('DEL', rkey)
redis.call('SREM', prefix .. 'reservations', rid)
redis.call('RPUSH', prefix .. 'charges', cjson.encode({id = rid, estimate = estimate, amount = amount, how = ARGV[4],
  settled_at = ARGV[5]}))
return out
"""


class RedisLedger:
    def __init__(self, url: str, stale_after_s: float = 30.0, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        self.owner = owner_id()
        self.stale_after_s = stale_after_s
        try:
            self._r = redis.Redis.from_url(
                url, socket_timeout=5, socket_connect_timeout=5, decode_responses=True, single_connection_client=True
            )
            self._r.ping()
            self._reserve = self._r.register_script(RESERVE)
            self._settle = self._r.register_script(SETTLE)
        except redis.RedisError as exc:
            raise LedgerError(f"cannot reach the Redis ledger at {_safe(url)}: {exc}") from exc
        self.heartbeat()

    def _counter_key(self, slot: Slot) -> str:
        return f"{self.prefix}c:{slot.instance}|{slot.window}"

    def heartbeat(self) -> None:
        try:
            self._r.hset(f"{self.prefix}owners", self.owner, time.time())
        except redis.RedisError as exc:
            raise LedgerError(f"ledger heartbeat failed: {exc}") from exc

    def reserve(self, reservation_id: str, slots: list[Slot], amount: int) -> Reserved | Blocked:
        keys = [self._counter_key(s) for s in slots]
        argv: list[Any] = [amount, reservation_id, self.prefix]
        for s in slots:
            argv += [s.instance, s.window, s.budget, s.scope, s.target, s.window_kind, s.limit_pico, s.block_pico,
                     "" if s.warn_pico is None else s.warn_pico]
        argv += [time.time(), self.owner]
        try:
            result = self._reserve(keys=keys, args=argv)
        except redis.RedisError as exc:
            raise LedgerError(f"ledger reserve failed: {exc}") from exc
        if int(result[0]) == 0:
            slot = slots[int(result[1]) - 1]
            return Blocked(SlotState(slot, int(result[2]), int(result[3])))
        values = [int(v) for v in result[1:]]
        states = tuple(SlotState(s, values[2 * i], values[2 * i + 1]) for i, s in enumerate(slots))
        return Reserved(reservation_id, states)

    def settle(self, reservation_id: str, actual: int | None, how: str) -> Settled | None:
        try:
            result = self._settle(
                keys=[f"{self.prefix}r:{reservation_id}"],
                args=[self.prefix, reservation_id, -1 if actual is None else actual, how, time.time()],
            )
        except redis.RedisError as exc:
            raise LedgerError(f"ledger settle failed: {exc}") from exc
        if not result:
            return None
        before, after = [], []
        for i in range(0, len(result), 13):
            m = [str(v) for v in result[i : i + 9]]
            slot = Slot(m[0], m[1], m[2], m[3], m[4], m[5], int(m[6]), int(m[7]), int(m[8]) if m[8] else None)
            before.append(SlotState(slot, int(result[i + 9]), int(result[i + 10])))
            after.append(SlotState(slot, int(result[i + 11]), int(result[i + 12])))
        return Settled(tuple(before), tuple(after))

    def recover(self) -> int:
        now = time.time()
        try:
            owners = {str(k): float(v) for k, v in self._r.hgetall(f"{self.prefix}owners").items()}
            recovered = 0
            for rid_any in self._r.smembers(f"{self.prefix}reservations"):
                rid = _text(rid_any)
                owner = str(self._r.hget(f"{self.prefix}r:{rid}", "owner") or "")
                if owner and owner != self.owner and owner_is_dead(owner, owners.get(owner, 0.0), now, self.stale_after_s):
                    if self.settle(rid, None, "estimate: its process died before settling") is not None:
                        recovered += 1
            return recovered
        except redis.RedisError as exc:
            raise LedgerError(f"ledger recovery failed: {exc}") from exc

    def counters(self) -> list[CounterRow]:
        rows = []
        for key in sorted(self._r.smembers(f"{self.prefix}counters")):
            h: dict[str, str] = self._r.hgetall(key)  # type: ignore[assignment]
            rows.append(CounterRow(h["instance"], h["window"], h["budget"], h["scope"], h["target"], h["window_kind"],
                                   int(h["limit"]), int(h["block"]), int(h["warn"]) if h.get("warn") else None,
                                   int(h.get("spent", 0)), int(h.get("reserved", 0))))
        return sorted(rows, key=lambda r: (r.instance, r.window))

    def charges(self) -> list[tuple[str, int, int, str]]:
        out = []
        for raw in self._r.lrange(f"{self.prefix}charges", 0, -1):
            c = json.loads(raw)
            out.append((c["id"], int(c["estimate"]), int(c["amount"]), c["how"]))
        return out

    def close(self) -> None:
        try:
            self._r.hdel(f"{self.prefix}owners", self.owner)
        except redis.RedisError:
            pass
        self._r.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _safe(url: str) -> str:
    """The URL without a password."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
