"""Semantic diff of two routing tables: what a policy change grants, takes away and costs.

It compares lowered tables, not text, so a moved file or a reformat is no change, and a one-line
edit to a profile shows up on every key that inherits it. Each change is classed the way a
reviewer weighs it. `compiler.diff_render` prints a `Diff` as text, markdown or JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .budget_allowance import ALL_TIME, Allowance, compare
from .resolve import CHAT_ONLY_TYPES

WIDENS = "widens access"
SPEND = "raises spend"
RESILIENCE = "weakens resilience"
NARROWS = "narrows"
NEUTRAL = "neutral"
CLASSES = (WIDENS, SPEND, RESILIENCE, NARROWS, NEUTRAL)
PRICE_FIELDS = ("input", "cached_input", "output", "reasoning")
PERIODS = {"day": "in a day", "week": "in a week", "month": "in a month", ALL_TIME: "over all time"}
UPSTREAM_LIMITS = {"max_answer_bytes": "answers", "max_event_bytes": "stream events"}


@dataclass(frozen=True)
class Change:
    subject: str  # "vk vk-alice", "budget eng-daily", "provider azure-east", "model gpt-4o", "gateway"
    action: str  # "+", "-", "~"
    what: str
    klass: str

    def to_json(self) -> dict[str, str]:
        return {"subject": self.subject, "action": self.action, "change": self.what, "class": self.klass}


@dataclass
class Diff:
    base_revision: str
    head_revision: str
    base_label: str = "base"
    head_label: str = "head"
    changes: list[Change] = field(default_factory=list)

    def add(self, subject: str, action: str, what: str, klass: str) -> None:
        self.changes.append(Change(subject, action, what, klass))

    def counts(self) -> dict[str, int]:
        return {k: sum(1 for c in self.changes if c.klass == k) for k in CLASSES}

    @property
    def undescribed(self) -> bool:
        """The revisions differ, yet no change was found: the diff has a blind spot, never "no change"."""
        return not self.changes and self.base_revision != self.head_revision

    @property
    def changed(self) -> bool:
        return bool(self.changes) or self.undescribed


@dataclass(frozen=True)
class _Sides:
    """Both tables, for comparisons that need context beyond the entity being compared."""

    base: dict[str, Any]
    head: dict[str, Any]


def usd_micros(value: int) -> str:
    """Dollars with the precision the amount needs (as the proxy writes them): $12.50, $0.001."""
    whole, _, fraction = f"{Decimal(value) / 1_000_000:,.6f}".partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


def _target(t: dict[str, Any]) -> str:
    return f"{t['provider']}/{t['model']}"


def diff_tables(base: dict[str, Any], head: dict[str, Any], base_label: str = "base", head_label: str = "head") -> Diff:
    """Every difference in what the two artifacts decide, classed; `base`/`head` are whole artifacts."""
    result = Diff(base["revision"], head["revision"], base_label, head_label)
    a, b = base["table"], head["table"]
    sides = _Sides(a, b)
    _gateway(result, a["gateway"], b["gateway"])
    _providers(result, a["providers"], b["providers"])
    _models(result, a["models"], b["models"])
    _keys(result, sides)
    _budgets(result, a["budgets"], b["budgets"])
    _rate_limits(result, a.get("rate_limits", {}), b.get("rate_limits", {}))
    return result


def _gateway(d: Diff, old: dict[str, Any], new: dict[str, Any]) -> None:
    if old["header_prefix"] != new["header_prefix"]:
        d.add("gateway", "~", f"header_prefix: {old['header_prefix']} -> {new['header_prefix']} "
              "(clients reading the old response headers stop seeing them)", NEUTRAL)
    if old["client_deadline_ms"] != new["client_deadline_ms"]:
        shorter = new["client_deadline_ms"] < old["client_deadline_ms"]
        d.add("gateway", "~", f"client deadline: {_seconds(old['client_deadline_ms'])} -> "
              f"{_seconds(new['client_deadline_ms'])}", RESILIENCE if shorter else NEUTRAL)
    if old["max_body_bytes"] != new["max_body_bytes"]:
        smaller = new["max_body_bytes"] < old["max_body_bytes"]
        d.add("gateway", "~", f"max_body_bytes: {old['max_body_bytes']:,} -> {new['max_body_bytes']:,}"
              + (" (larger requests are refused)" if smaller else ""), NARROWS if smaller else NEUTRAL)
    for name, what in UPSTREAM_LIMITS.items():
        if old.get(name) != new.get(name):
            smaller = name in old and name in new and new[name] < old[name]
            before, after = (f"{side[name]:,}" if name in side else "(none)" for side in (old, new))
            d.add("gateway", "~", f"{name}: {before} -> {after}" + (f" (larger {what} now fail)" if smaller else ""),
                  RESILIENCE if smaller else NEUTRAL)
    _inbound_bounds(d, old, new)
    _admin_token(d, old.get("admin_token"), new.get("admin_token"))
    settled = {"header_prefix", "client_deadline_ms", "max_body_bytes", "admin_token", *UPSTREAM_LIMITS, *INBOUND}
    for name in sorted((old.keys() | new.keys()) - settled):
        if old.get(name) != new.get(name):
            d.add("gateway", "~", f"{name}: {old.get(name)} -> {new.get(name)}", NEUTRAL)


INBOUND = {
    "header_timeout_ms": ("header timeout", NARROWS, "slower clients are cut off"),
    "body_timeout_ms": ("body timeout", NARROWS, "slower uploads are cut off"),
    "idle_timeout_ms": ("idle timeout", RESILIENCE, "clients reconnect more often"),
    "max_header_bytes": ("max_header_bytes", NARROWS, "larger headers are refused"),
    "max_headers": ("max_headers", NARROWS, "requests with more headers are refused"),
    "max_connections": ("max_connections", RESILIENCE, "fewer clients are served at once"),
    "max_in_flight": ("max_in_flight", RESILIENCE, "fewer requests are served at once"),
}
"""Each bound on client connections: how the diff names it, and the class and effect of lowering
it; raising one is neutral."""


def _admin_token(d: Diff, before: str | None, after: str | None) -> None:
    """A new or changed admin token opens the admin API to whoever holds it; none closes it."""
    if before == after:
        return
    values = f"admin token: {before or '(none)'} -> {after or '(none)'}"
    if after is None:
        d.add("gateway", "~", f"{values} (`policy serve --admin-port` no longer starts)", NARROWS)
    else:
        d.add("gateway", "~", f"{values} (whoever holds it reads the admin API)", WIDENS)


def _inbound_bounds(d: Diff, old: dict[str, Any], new: dict[str, Any]) -> None:
    for name, (label, lowered, effect) in INBOUND.items():
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        show = _seconds if name.endswith("_ms") else "{:,}".format
        values = f"{label}: {'(none)' if before is None else show(before)} -> {'(none)' if after is None else show(after)}"
        if before is not None and after is not None and after < before:
            d.add("gateway", "~", f"{values} ({effect})", lowered)
        else:
            d.add("gateway", "~", values, NEUTRAL)


def _seconds(ms: int) -> str:
    return f"{ms / 1000:g}s"


def _providers(d: Diff, a: dict[str, Any], b: dict[str, Any]) -> None:
    for pid in sorted(b.keys() - a.keys()):
        d.add(f"provider {pid}", "+", f"added ({b[pid]['type']})", NEUTRAL)
    for pid in sorted(a.keys() - b.keys()):
        d.add(f"provider {pid}", "-", "removed", RESILIENCE)
    for pid in sorted(a.keys() & b.keys()):
        _provider(d, f"provider {pid}", a[pid], b[pid])


def _provider(d: Diff, subject: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    if old.get("base_url") != new.get("base_url"):
        d.add(subject, "~", f"base_url: {old.get('base_url') or '(default)'} -> {new.get('base_url') or '(default)'} "
              "(every prompt routed here, and the provider credential, now go to this host)", WIDENS)
    for name in ("region", "project", "location"):
        if old.get(name) != new.get(name):
            d.add(subject, "~", f"{name}: {old.get(name) or '(none)'} -> {new.get(name) or '(none)'} "
                  "(every prompt routed here now goes to this cloud region or project)", WIDENS)
    for name in ("type", "protocol", "api_key", "api_version"):
        if old.get(name) != new.get(name):
            values = f"{name}: {old.get(name) or '(none)'} -> {new.get(name) or '(none)'}"
            if name == "type" and new["type"] in CHAT_ONLY_TYPES and old["type"] not in CHAT_ONLY_TYPES:
                d.add(subject, "~", f"{values} (Chat Completions only: Responses, Messages and Gemini requests are "
                      "translated to it, and those using what Chat Completions cannot carry are refused)", NARROWS)
            else:
                d.add(subject, "~", values, NEUTRAL)
    if (old.get("api_keys") or []) != (new.get("api_keys") or []):
        _api_keys(d, subject, old, new)
    for name in sorted(old.get("cloud_credentials", {}).keys() | new.get("cloud_credentials", {}).keys()):
        before, after = old.get("cloud_credentials", {}).get(name), new.get("cloud_credentials", {}).get(name)
        if before != after:
            d.add(subject, "~", f"{name}: {before or '(none)'} -> {after or '(none)'}", NEUTRAL)
    if old["deployments"] != new["deployments"]:
        removed = old["deployments"].keys() - new["deployments"].keys()
        d.add(subject, "~", "deployments: " + _deployments(old["deployments"], new["deployments"]),
              RESILIENCE if removed else NEUTRAL)
    if old["timeouts"] != new["timeouts"]:
        lower = any(new["timeouts"][k] < old["timeouts"][k] for k in old["timeouts"])
        d.add(subject, "~", f"timeouts: {_ms(old['timeouts'])} -> {_ms(new['timeouts'])}",
              RESILIENCE if lower else NEUTRAL)
    if old["circuit"] != new["circuit"]:
        d.add(subject, "~", f"cool-down: {_circuit(old['circuit'])} -> {_circuit(new['circuit'])}", NEUTRAL)


def _api_keys(d: Diff, subject: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Credentials by id: added, removed, reweighted, moved. A host no credential used before widens
    access (prompts and a credential go there); a credential taken away weakens resilience."""
    before = {c["id"]: c for c in old.get("api_keys") or []}
    after = {c["id"]: c for c in new.get("api_keys") or []}
    parts = [f"+ {cid} ({_credential(after[cid])})" for cid in after if cid not in before]
    parts += [f"- {cid}" for cid in before if cid not in after]
    for cid in (c for c in after if c in before and before[c] != after[c]):
        was, now = before[cid], after[cid]
        told = [f"{name} {was[name] or '(default)'} -> {now[name] or '(default)'}"
                for name in ("api_key", "weight", "base_url", "api_version") if was[name] != now[name]]
        parts.append(f"{cid} " + ", ".join(told))
    hosts = {c["base_url"] for c in before.values()} | {old.get("base_url")}
    if any(c["base_url"] not in hosts for c in after.values()):
        klass = WIDENS
    elif before.keys() - after.keys():
        klass = RESILIENCE
    else:
        klass = NEUTRAL
    d.add(subject, "~", "api_keys: " + ("; ".join(parts) or "reordered"), klass)


def _credential(c: dict[str, Any]) -> str:
    where = f", at {c['base_url']}" if c["base_url"] else ""
    return f"{c['api_key']}, weight {c['weight']}{where}"


def _deployments(old: dict[str, str], new: dict[str, str]) -> str:
    parts = [f"+ {m} as {new[m]}" for m in sorted(new.keys() - old.keys())]
    parts += [f"- {m} (was {old[m]})" for m in sorted(old.keys() - new.keys())]
    parts += [f"{m} as {old[m]} -> {new[m]}" for m in sorted(old.keys() & new.keys()) if old[m] != new[m]]
    return "; ".join(parts)


def _circuit(c: dict[str, int]) -> str:
    return f"after {c['failures']} failures for {_seconds(c['cooldown_ms'])}"


def _ms(t: dict[str, int]) -> str:
    return f"connect {t['connect_ms'] / 1000:g}s, read {t['read_ms'] / 1000:g}s, total {t['total_ms'] / 1000:g}s"


def _models(d: Diff, a: dict[str, Any], b: dict[str, Any]) -> None:
    for name in sorted(b.keys() - a.keys()):
        d.add(f"model {name}", "+", f"registered ({', '.join(b[name]['providers'])})", NEUTRAL)
    for name in sorted(a.keys() - b.keys()):
        d.add(f"model {name}", "-", "removed from the registry", NARROWS)
    for name in sorted(a.keys() & b.keys()):
        old, new = a[name], b[name]
        if old["providers"] != new["providers"]:
            fewer = bool(set(old["providers"]) - set(new["providers"]))
            d.add(f"model {name}", "~", f"providers: {', '.join(old['providers'])} -> {', '.join(new['providers'])}",
                  RESILIENCE if fewer else NEUTRAL)
        _price(d, f"model {name}", old["price"], new["price"])


def _price(d: Diff, subject: str, old: dict[str, int] | None, new: dict[str, int] | None) -> None:
    if old == new:
        return
    if old is None and new is not None:
        d.add(subject, "+", f"price set: {_price_text(new)}", NEUTRAL)
    elif old is not None and new is None:
        d.add(subject, "-", f"price removed (was {_price_text(old)}); no budget can count its spend", NEUTRAL)
    elif old is not None and new is not None:
        up = any(new[k] > old[k] for k in PRICE_FIELDS)
        parts = [f"{k} {usd_micros(old[k])} -> {usd_micros(new[k])}" for k in PRICE_FIELDS if old[k] != new[k]]
        d.add(subject, "~", "price per 1M tokens: " + ", ".join(parts), SPEND if up else NEUTRAL)


def _price_text(p: dict[str, int]) -> str:
    return f"input {usd_micros(p['input'])}, output {usd_micros(p['output'])} per 1M tokens"


def _keys(d: Diff, sides: _Sides) -> None:
    a, b = sides.base["virtual_keys"], sides.head["virtual_keys"]
    for vid in sorted(b.keys() - a.keys()):
        k = b[vid]
        who = ", ".join(x for x in (k.get("principal"), k.get("team") and f"team {k['team']}") if x)
        if k["status"] == "active":
            d.add(f"vk {vid}", "+", f"new key{f' ({who})' if who else ''} may call: {', '.join(sorted(k['routes']))}",
                  WIDENS)
        else:
            d.add(f"vk {vid}", "+", f"new key{f' ({who})' if who else ''}, {k['status']}: it admits no request", NEUTRAL)
    for vid in sorted(a.keys() - b.keys()):
        d.add(f"vk {vid}", "-", "removed", NARROWS)
    hashes_a, hashes_b = _hashes_by_key(sides.base["keys"]), _hashes_by_key(sides.head["keys"])
    for vid in sorted(a.keys() & b.keys()):
        old, new = a[vid], b[vid]
        if old["status"] != new["status"]:
            d.add(f"vk {vid}", "~", f"status: {old['status']} -> {new['status']}",
                  NARROWS if new["status"] == "revoked" else WIDENS)
        settings = Diff("", "")
        _key(settings, f"vk {vid}", old, new, sides, hashes_a.get(vid, set()) != hashes_b.get(vid, set()))
        if new["status"] == "revoked":
            _collapse_revoked(d, settings.changes, old["status"])
        else:
            d.changes.extend(settings.changes)


def _hashes_by_key(keys: dict[str, str]) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for digest, vid in keys.items():
        result.setdefault(vid, set()).add(digest)
    return result


def _collapse_revoked(d: Diff, settings: list[Change], old_status: str) -> None:
    """A key revoked in HEAD admits no request: its other changes take no effect, so they count once, neutral."""
    if not settings:
        return
    what = "; ".join(c.what for c in settings[:3]) + (f"; and {len(settings) - 3} more" if len(settings) > 3 else "")
    state = "stays revoked" if old_status == "revoked" else "is revoked"
    d.add(settings[0].subject, "~", f"{len(settings)} setting change{'s' * (len(settings) != 1)} without effect "
          f"while the key {state}: {what}", NEUTRAL)


def _key(d: Diff, subject: str, old: dict[str, Any], new: dict[str, Any], sides: _Sides, rotated: bool) -> None:
    if rotated:
        prefixes = f" ({old['key_prefix'] or '?'}… -> {new['key_prefix'] or '?'}…)"
        d.add(subject, "~", f"key rotated{prefixes}: the old key stops working, whoever holds the new one gets in", WIDENS)
    elif old["key_prefix"] != new["key_prefix"]:
        d.add(subject, "~", f"key_prefix: {old['key_prefix']} -> {new['key_prefix']} (same key)", NEUTRAL)
    if old["expires_at"] != new["expires_at"]:
        later = new["expires_at"] is None or (old["expires_at"] is not None and new["expires_at"] > old["expires_at"])
        d.add(subject, "~", f"expires_at: {old['expires_at']} -> {new['expires_at']}", WIDENS if later else NARROWS)
    for name in ("principal", "team", "profile"):
        if old.get(name) != new.get(name):
            d.add(subject, "~", f"{name}: {old.get(name)} -> {new.get(name)}", NEUTRAL)
    granted = sorted(new["routes"].keys() - old["routes"].keys())
    withdrawn = sorted(old["routes"].keys() - new["routes"].keys())
    if granted:
        d.add(subject, "+", f"may now call: {', '.join(granted)}", WIDENS)
    if withdrawn:
        d.add(subject, "-", f"may no longer call: {', '.join(withdrawn)}", NARROWS)
    requestable = {route["model"] for route in new["routes"].values()}
    for name in sorted(old["routes"].keys() & new["routes"].keys()):
        _route(d, subject, name, old["routes"][name], new["routes"][name], sides, requestable)
    if old["cache"] != new["cache"]:
        oc, nc = old["cache"], new["cache"]
        klass = SPEND if nc["mode"] == "disable" and oc["mode"] != "disable" else NEUTRAL
        d.add(subject, "~", f"cache: {_cache(oc)} -> {_cache(nc)}", klass)
    added = sorted(set(new["budgets"]) - set(old["budgets"]))
    removed = sorted(set(old["budgets"]) - set(new["budgets"]))
    if added:
        d.add(subject, "+", f"now under budget {', '.join(added)}", NARROWS)
    if removed:
        d.add(subject, "-", f"no longer under budget {', '.join(removed)}", SPEND)
    added = sorted(set(new.get("rate_limits", [])) - set(old.get("rate_limits", [])))
    removed = sorted(set(old.get("rate_limits", [])) - set(new.get("rate_limits", [])))
    if added:
        d.add(subject, "+", f"now under rate limit {', '.join(added)}", NARROWS)
    if removed:
        d.add(subject, "-", f"no longer under rate limit {', '.join(removed)}", WIDENS)


def _cache(c: dict[str, Any]) -> str:
    extra = [x for x, on in (("override allowed", c["allow_override"]), ("salted", c["salt"])) if on]
    return str(c["mode"]) + (f" ({', '.join(extra)})" if extra else "")


def _blended(models: dict[str, Any], name: str) -> int | None:
    """Input plus output price per 1M tokens: the figure that decides which of two models costs more."""
    price = models.get(name, {}).get("price")
    return None if price is None else int(price["input"]) + int(price["output"])


def _pricier(sides: _Sides, old_model: str, new_model: str) -> tuple[bool, str]:
    old, new = _blended(sides.base["models"], old_model), _blended(sides.head["models"], new_model)
    if old is None or new is None or old == new:
        return False, ""
    return new > old, f"; input+output per 1M tokens {usd_micros(old)} -> {usd_micros(new)}"


def _route(d: Diff, subject: str, name: str, old: dict[str, Any], new: dict[str, Any], sides: _Sides,
           requestable: set[str]) -> None:
    ot, nt = [_target(t) for t in old["targets"]], [_target(t) for t in new["targets"]]
    if old["model"] != new["model"]:
        up, prices = _pricier(sides, old["model"], new["model"])
        d.add(subject, "~", f"{name} now means {new['model']} (was {old['model']}{prices})", SPEND if up else NEUTRAL)
    if ot and nt and ot[0] != nt[0]:
        _first_target(d, subject, name, old["targets"][0], new["targets"][0], sides, old["model"] != new["model"])
    if ot[1:] != nt[1:]:
        _fallback(d, subject, name, old, new, sides, requestable)
    _upstream_names(d, subject, name, old["targets"], new["targets"], sides)
    lost = sorted(set(old["fallback_on"]) - set(new["fallback_on"]))
    gained = sorted(set(new["fallback_on"]) - set(old["fallback_on"]))
    if (lost or gained) and _conditions_apply(old) and _conditions_apply(new):
        d.add(subject, "~", f"{name} falls back on: {', '.join(old['fallback_on'])} -> {', '.join(new['fallback_on'])}",
              RESILIENCE if lost else NEUTRAL)
    if old["retries"] != new["retries"]:
        d.add(subject, "~", f"{name} retries: {old['retries']} -> {new['retries']}",
              RESILIENCE if new["retries"] < old["retries"] else NEUTRAL)


def _fallback(d: Diff, subject: str, name: str, old: dict[str, Any], new: dict[str, Any], sides: _Sides,
              requestable: set[str]) -> None:
    """The chain line, weakening resilience when it has fewer targets or fewer providers to turn to;
    what a new hop reaches or costs is said beside it."""
    ot, nt = [_target(t) for t in old["targets"]], [_target(t) for t in new["targets"]]
    chain = f"{name} fallback: {' -> '.join(ot) or '-'}  =>  {' -> '.join(nt) or '-'}"
    effects = _hop_effects(old, new, sides, requestable)
    providers_before, providers_after = ({t["provider"] for t in r["targets"]} for r in (old, new))
    if len(nt) < len(ot) or len(providers_after) < len(providers_before):
        d.add(subject, "~", chain, RESILIENCE)
    elif effects:
        klass, reason = effects.pop(0)
        d.add(subject, "~", f"{chain} ({reason})", klass)
    else:
        d.add(subject, "~", chain, NEUTRAL)
    for klass, reason in effects:
        d.add(subject, "~", f"{name} fallback {reason}", klass)


def _hop_effects(old: dict[str, Any], new: dict[str, Any], sides: _Sides, requestable: set[str]) -> list[tuple[str, str]]:
    """Each hop HEAD adds: a model the key may not call by name or a provider the route did not reach
    widens access; a model dearer than the hop it replaces (or, added, than the routed model) raises
    spend. Added and dropped hops pair up in chain order, as a moved hop."""
    before = {_target(t) for t in old["targets"]}
    providers = {t["provider"] for t in old["targets"]}
    added = [t for t in new["targets"][1:] if _target(t) not in before]
    dropped = [t for t in old["targets"][1:] if _target(t) not in {_target(n) for n in new["targets"]}]
    widens: list[tuple[str, str]] = []
    spends: list[tuple[str, str]] = []
    for i, hop in enumerate(added):
        if hop["model"] not in requestable:
            widens.append((WIDENS, f"now reaches {_target(hop)}, a model this key may not call by name"))
        elif hop["provider"] not in providers:
            widens.append((WIDENS, f"now sends prompts to {hop['provider']}"))
        replaced = dropped[i]["model"] if i < len(dropped) else new["model"]
        was, now = _blended(sides.base["models"], replaced), _blended(sides.head["models"], hop["model"])
        if was is not None and now is not None and now > was:
            spends.append((SPEND, f"now costs more: {hop['model']} instead of {replaced}, input+output per 1M tokens "
                                  f"{usd_micros(was)} -> {usd_micros(now)}"))
    return widens + spends


def _conditions_apply(route: dict[str, Any]) -> bool:
    """Conditions decide something when there is a next target or a retry of the same one."""
    return len(route["targets"]) > 1 or route["retries"] > 0


def _first_target(d: Diff, subject: str, name: str, old: dict[str, Any], new: dict[str, Any], sides: _Sides,
                  model_line_shown: bool) -> None:
    up, prices = (False, "") if model_line_shown else _pricier(sides, old["model"], new["model"])
    klass = SPEND if up else NEUTRAL
    if old["provider"] != new["provider"]:
        models = f" ({_target(old)} -> {_target(new)}{prices})" if old["model"] != new["model"] else ""
        d.add(subject, "~", f"{name}: {old['provider']} -> {new['provider']}{models}", klass)
    else:
        d.add(subject, "~", f"{name}: first target {_target(old)} -> {_target(new)}{prices}", klass)


def _upstream_names(d: Diff, subject: str, name: str, old: list[dict[str, Any]], new: list[dict[str, Any]],
                    sides: _Sides) -> None:
    """Same target, another name or protocol upstream; told once on the provider when its deployments moved."""
    for o, n in zip(old, new, strict=False):
        if _target(o) != _target(n):
            continue
        pid = o["provider"]
        base_p, head_p = sides.base["providers"].get(pid, {}), sides.head["providers"].get(pid, {})
        if o["upstream_model"] != n["upstream_model"] and (
            base_p.get("deployments", {}).get(o["model"]) == head_p.get("deployments", {}).get(o["model"])
        ):
            d.add(subject, "~", f"{name} via {_target(o)} is sent upstream as {n['upstream_model']} "
                  f"(was {o['upstream_model']})", NEUTRAL)
        if o["protocol"] != n["protocol"] and base_p.get("protocol") == head_p.get("protocol"):
            d.add(subject, "~", f"{name} via {_target(o)} speaks {n['protocol']} (was {o['protocol']})", NEUTRAL)


def _budgets(d: Diff, a: dict[str, Any], b: dict[str, Any]) -> None:
    for inst in sorted(b.keys() - a.keys()):
        x = b[inst]
        d.add(f"budget {inst}", "+", f"{usd_micros(x['limit_micros'])} {_per(x['window'])} on {x['scope']} {x['target']}", NARROWS)
    for inst in sorted(a.keys() - b.keys()):
        d.add(f"budget {inst}", "-", "removed", SPEND)
    for inst in sorted(a.keys() & b.keys()):
        _budget(d, f"budget {inst}", a[inst], b[inst])


def _budget(d: Diff, subject: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    if (old["scope"], old["target"]) != (new["scope"], new["target"]):
        d.add(subject, "~", f"applies to {old['scope']} {old['target']} -> {new['scope']} {new['target']}", NEUTRAL)
    if old["window"] != new["window"]:
        _allowance(d, subject, old, new)
    elif old["limit_micros"] != new["limit_micros"]:
        up = new["limit_micros"] > old["limit_micros"]
        d.add(subject, "~", f"limit {usd_micros(old['limit_micros'])} -> {usd_micros(new['limit_micros'])}"
              + f" {_per(new['window'])}", SPEND if up else NARROWS)
    if old["block_bp"] != new["block_bp"]:
        d.add(subject, "~", f"block threshold {_pct(old['block_bp'])} -> {_pct(new['block_bp'])}",
              SPEND if new["block_bp"] > old["block_bp"] else NARROWS)
    if old["warn_bp"] != new["warn_bp"]:
        d.add(subject, "~", f"warn threshold {_pct(old['warn_bp'])} -> {_pct(new['warn_bp'])}", NEUTRAL)
    if old["timezone"] != new["timezone"]:
        d.add(subject, "~", f"timezone: {old['timezone']} -> {new['timezone']}", NEUTRAL)


def _allowance(d: Diff, subject: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """A new window changes what the limit means: compared over the periods both windows name."""
    found = compare(old["limit_micros"], old["window"], new["limit_micros"], new["window"])
    details = "; ".join(f"{PERIODS[o.period]}: {_allowed(o)} -> {_allowed(n)}" for o, n in found.differences)
    klass = SPEND if found.allows_more else NARROWS if found.allows_less else NEUTRAL
    d.add(subject, "~", f"limit {usd_micros(old['limit_micros'])} {_per(old['window'])} -> "
          f"{usd_micros(new['limit_micros'])} {_per(new['window'])}" + (f" (at most, {details})" if details else ""),
          klass)


def _per(window: str) -> str:
    return "in total" if window == ALL_TIME else f"per {window}"


def _allowed(a: Allowance) -> str:
    """A prorated amount is an estimate: cents suffice unless it is below one."""
    if a.micros is None:
        return "no cap"
    micros = round(a.micros)
    return usd_micros(round(micros, -4) if micros >= 10_000 else micros)


def _pct(bp: int | None) -> str:
    return "none" if bp is None else f"{bp / 100:g}%"


PERIOD_NAMES = {1: "second", 60: "minute", 3600: "hour", 86_400: "day"}
RATE_NAMES = {"requests": "requests", "tokens": "tokens"}


def _rate_limits(d: Diff, a: dict[str, Any], b: dict[str, Any]) -> None:
    """A limit added or lowered narrows what keys may do; raised or removed, it widens it."""
    for inst in sorted(b.keys() - a.keys()):
        x = b[inst]
        d.add(f"rate limit {inst}", "+", f"{_limits_text(x)} on {_limit_subject(x)}{_models_text(x)}", NARROWS)
    for inst in sorted(a.keys() - b.keys()):
        d.add(f"rate limit {inst}", "-", f"removed (was {_limits_text(a[inst])}{_models_text(a[inst])})", WIDENS)
    for inst in sorted(a.keys() & b.keys()):
        _rate_limit(d, f"rate limit {inst}", a[inst], b[inst])


def _rate_limit(d: Diff, subject: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    if (old["scope"], old["target"]) != (new["scope"], new["target"]):
        d.add(subject, "~", f"applies to {_limit_subject(old)} -> {_limit_subject(new)}", NEUTRAL)
    for name in RATE_NAMES:
        before, after = old[name], new[name]
        if before == after:
            continue
        text = f"{name}: {_rate_text(before, name)} -> {_rate_text(after, name)}"
        d.add(subject, "~", text, WIDENS if _rate_allows_more(before, after) else NARROWS)
    if old["in_flight"] != new["in_flight"]:
        before, after = old["in_flight"], new["in_flight"]
        more = after is None or (before is not None and after > before)
        d.add(subject, "~", f"in flight: {before if before is not None else 'no limit'} -> "
              f"{after if after is not None else 'no limit'}", WIDENS if more else NARROWS)
    if old["models"] != new["models"]:
        before, after = old["models"], new["models"]
        fewer = after is not None and (before is None or bool(set(before) - set(after)))
        d.add(subject, "~", f"models: {', '.join(before) if before else 'every model'} -> "
              f"{', '.join(after) if after else 'every model'}", WIDENS if fewer else NARROWS)


def _rate_allows_more(old: dict[str, int] | None, new: dict[str, int] | None) -> bool:
    """Whether `new` lets more through than `old` over either rate's period: 60/minute -> 2/second
    allows more in a minute, 60/minute -> 1/second less in a second (all 60 may come at once)."""
    if new is None:
        return True
    if old is None:
        return False
    periods = {old["period_s"], new["period_s"]}
    return any(_allowed_in(new, p) > _allowed_in(old, p) for p in periods)


def _allowed_in(rate: dict[str, int], period_s: int) -> Decimal:
    return Decimal(rate["count"]) * max(Decimal(period_s) / rate["period_s"], Decimal(1))


def _rate_text(rate: dict[str, int] | None, name: str) -> str:
    return "no limit" if rate is None else f"{rate['count']:,}/{PERIOD_NAMES.get(rate['period_s'], rate['period_s'])}"


def _limits_text(x: dict[str, Any]) -> str:
    parts = [f"{x[n]['count']:,} {n} per {PERIOD_NAMES.get(x[n]['period_s'], x[n]['period_s'])}"
             for n in RATE_NAMES if x[n] is not None]
    if x["in_flight"] is not None:
        parts.append(f"{x['in_flight']:,} in flight")
    return ", ".join(parts)


def _limit_subject(x: dict[str, Any]) -> str:
    return "the organisation" if x["scope"] == "org" else f"{x['scope']} {x['target']}"


def _models_text(x: dict[str, Any]) -> str:
    return f" (models: {', '.join(x['models'])})" if x["models"] is not None else ""
