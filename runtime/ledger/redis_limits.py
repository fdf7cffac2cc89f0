"""Rate-limit state in the Redis ledger: Lua chunks the admission and settle scripts are built from,
the twin of `ratelimit/admission.py` (same formulas, in doubles), and the parsing of their replies.

Each instance is a hash `l:<instance>`: its limits as last admitted (`rc`/`rp` requests per
period, `tc`/`tp` tokens, `fl` in flight, 0 for none) and its state (`ru`/`ra`, `tu`/`ta`: use and
the instant it was written; `f`: slots taken); the set `limits` lists them. An open reservation's
hash keeps what it took in `holds`, so settling (or recovery) gives back exactly that.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..ratelimit.bucket import current
from ..ratelimit.limits import LimitSpec, Rate
from ..ratelimit.outcome import Limited, LimitFigures, LimitUsage

FUNCTIONS = """
local function fmt(x) return string.format('%.17g', x) end
local function cur(used, at, now, count, period)
  local e = now - at
  if e < 0 then e = 0 end
  local u = used - e * count / period
  if u < 0 then u = 0 end
  return u
end
local function until_below(use, level, count, period)
  local w = (use - level) * period / count
  if w < 0 then w = 0 end
  return w
end
local function left(use, count)
  local r = math.floor(count - use)
  if r < 0 then r = 0 end
  return r
end
local function later(a, b) if b > a then return b end return a end
"""

CHECK = """
local now = tonumber(ARGV[8])
local tokens = tonumber(ARGV[9])
local lspec = cjson.decode(ARGV[10])
local lstate = {}
local figs = {}
local function fig(j, kind, limit, remaining, reset)
  figs[#figs + 1] = j; figs[#figs + 1] = kind; figs[#figs + 1] = limit; figs[#figs + 1] = remaining
  figs[#figs + 1] = fmt(reset)
end
for j = 1, #lspec do
  local sp = lspec[j]
  local st = redis.call('HMGET', KEYS[n + j], 'ru', 'ra', 'tu', 'ta', 'f')
  local s = {tonumber(st[1]) or 0, tonumber(st[2]) or 0, tonumber(st[3]) or 0, tonumber(st[4]) or 0,
             tonumber(st[5]) or 0}
  local rc, rp, tc, tp, fl = sp[2], sp[3], sp[4], sp[5], sp[6]
  if rc > 0 then
    local use = cur(s[1], s[2], now, rc, rp)
    if use + 1 > rc then
      return {2, j, 'requests', rc, left(use, rc), fmt(until_below(use, 0, rc, rp)),
              fmt(until_below(use + 1, rc, rc, rp))}
    end
    use = use + 1
    s[1] = use; s[2] = later(s[2], now)
    fig(j, 'requests', rc, left(use, rc), until_below(use, 0, rc, rp))
  end
  if tc > 0 then
    local use = cur(s[3], s[4], now, tc, tp)
    if use >= tc then
      return {2, j, 'tokens', tc, 0, fmt(until_below(use, 0, tc, tp)), fmt(until_below(use, tc, tc, tp) + tp / tc)}
    end
    use = use + tokens
    s[3] = use; s[4] = later(s[4], now)
    fig(j, 'tokens', tc, left(use, tc), until_below(use, 0, tc, tp))
  end
  if fl > 0 then
    if s[5] >= fl then return {2, j, 'in_flight', fl, 0, '1', '1'} end
    s[5] = s[5] + 1
    fig(j, 'in_flight', fl, fl - s[5], 0)
  end
  lstate[j] = s
end
"""

WRITE = """
local holds = {}
for j = 1, #lspec do
  local sp, s = lspec[j], lstate[j]
  redis.call('HSET', KEYS[n + j], 'instance', sp[1], 'rc', sp[2], 'rp', sp[3], 'tc', sp[4], 'tp', sp[5], 'fl', sp[6],
    'ru', fmt(s[1]), 'ra', fmt(s[2]), 'tu', fmt(s[3]), 'ta', fmt(s[4]), 'f', s[5])
  redis.call('SADD', prefix .. 'limits', KEYS[n + j])
  local reserved = 0
  if sp[4] > 0 then reserved = tokens end
  local took = 0
  if sp[6] > 0 then took = 1 end
  holds[#holds + 1] = {KEYS[n + j], reserved, took}
end
if #holds > 0 then redis.call('HSET', prefix .. 'r:' .. ARGV[2], 'holds', cjson.encode(holds)) end
"""

SETTLE_HOLDS = """
local holds = redis.call('HGET', rkey, 'holds')
if holds then
  local now = tonumber(ARGV[7])
  for _, h in ipairs(cjson.decode(holds)) do
    local st = redis.call('HMGET', h[1], 'tc', 'tp', 'tu', 'ta', 'f')
    if st[1] then
      local f = tonumber(st[5]) or 0
      if h[3] == 1 and f > 0 then f = f - 1 end
      local tc = tonumber(st[1]) or 0
      if ARGV[6] ~= '' and h[2] > 0 and tc > 0 and tonumber(ARGV[6]) ~= h[2] then
        local ta = tonumber(st[4]) or 0
        local use = cur(tonumber(st[3]) or 0, ta, now, tc, tonumber(st[2]))
        local after = use + tonumber(ARGV[6]) - h[2]
        if after < 0 then after = 0 end
        redis.call('HSET', h[1], 'f', f, 'tu', fmt(after), 'ta', fmt(later(ta, now)))
      else
        redis.call('HSET', h[1], 'f', f)
      end
    end
  end
end
"""


def spec_json(limits: list[LimitSpec]) -> bytes:
    return orjson.dumps([[
        s.instance, s.requests.count if s.requests else 0, s.requests.period_s if s.requests else 1,
        s.tokens.count if s.tokens else 0, s.tokens.period_s if s.tokens else 1, s.in_flight or 0,
    ] for s in limits])


def limited(limits: list[LimitSpec], reply: list[Any]) -> Limited:
    spec = limits[int(reply[1]) - 1]
    figures = LimitFigures(spec.instance, _text(reply[2]), int(reply[3]), int(reply[4]), float(reply[5]))
    return Limited(figures, float(reply[6]))


def figures(limits: list[LimitSpec], flat: list[Any]) -> tuple[LimitFigures, ...]:
    return tuple(
        LimitFigures(limits[int(flat[i]) - 1].instance, _text(flat[i + 1]), int(flat[i + 2]), int(flat[i + 3]),
                     float(flat[i + 4]))
        for i in range(0, len(flat), 5)
    )


def usage(fields: dict[str, str], now: float) -> LimitUsage:
    def number(name: str) -> float:
        return float(fields.get(name) or 0)

    rc, tc, fl = int(number("rc")), int(number("tc")), int(number("fl"))
    requests = Rate(rc, int(number("rp"))) if rc else None
    tokens = Rate(tc, int(number("tp"))) if tc else None
    return LimitUsage(
        fields["instance"], current(number("ru"), number("ra"), now, requests) if requests else 0.0,
        rc or None, current(number("tu"), number("ta"), now, tokens) if tokens else 0.0, tc or None,
        int(number("f")), fl or None,
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
