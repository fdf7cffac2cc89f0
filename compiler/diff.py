"""Semantic diff of two routing tables: what a policy change grants, takes away and costs.

It compares lowered tables, not text, so a moved file or a reformat is no change, and a one-line
edit to a profile shows up on every key that inherits it. Each change is classed the way a
reviewer weighs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

WIDENS = "widens access"
SPEND = "raises spend"
RESILIENCE = "weakens resilience"
NARROWS = "narrows"
NEUTRAL = "neutral"
CLASSES = (WIDENS, SPEND, RESILIENCE, NARROWS, NEUTRAL)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Change:
    subject: str  # "vk vk-alice", "budget eng-daily", "provider azure-east", "model gpt-4o"
    action: str  # "+", "-", "~"
    what: str
    klass: str

    def to_json(self) -> dict[str, str]:
        return {"subject": self.subject, "action": self.action, "change": self.what, "class": self.klass}


@dataclass
class Diff:
    base_revision: str
    head_revision: str
    changes: list[Change] = field(default_factory=list)

    def add(self, subject: str, action: str, what: str, klass: str) -> None:
        self.changes.append(Change(subject, action, what, klass))

    def counts(self) -> dict[str, int]:
        return {k: sum(1 for c in self.changes if c.klass == k) for k in CLASSES}


def _usd_micros(value: int) -> str:
    return f"${Decimal(value) / 1_000_000:,.2f}"


def _target(t: dict[str, Any]) -> str:
    return f"{t['provider']}/{t['model']}"


def diff_tables(base: dict[str, Any], head: dict[str, Any]) -> Diff:
    result = Diff(base["revision"], head["revision"])
    a, b = base["table"], head["table"]
    _providers(result, a["providers"], b["providers"])
    _models(result, a["models"], b["models"])
    _keys(result, a["virtual_keys"], b["virtual_keys"])
    _budgets(result, a["budgets"], b["budgets"])
    return result


def _providers(d: Diff, a: dict[str, Any], b: dict[str, Any]) -> None:
    for pid in sorted(b.keys() - a.keys()):
        d.add(f"provider {pid}", "+", f"added ({b[pid]['type']})", NEUTRAL)
    for pid in sorted(a.keys() - b.keys()):
        d.add(f"provider {pid}", "-", "removed", RESILIENCE)
    for pid in sorted(a.keys() & b.keys()):
        old, new = a[pid], b[pid]
        for name in ("base_url", "api_key", "api_version", "deployments", "type"):
            if old.get(name) != new.get(name):
                d.add(f"provider {pid}", "~", f"{name}: {old.get(name)} -> {new.get(name)}", NEUTRAL)
        if old["timeouts"] != new["timeouts"]:
            lower = new["timeouts"]["total_ms"] < old["timeouts"]["total_ms"]
            d.add(f"provider {pid}", "~", f"timeouts: {_ms(old['timeouts'])} -> {_ms(new['timeouts'])}",
                  RESILIENCE if lower else NEUTRAL)
        if old.get("circuit") != new.get("circuit"):
            d.add(f"provider {pid}", "~", f"circuit: {old.get('circuit')} -> {new.get('circuit')}", NEUTRAL)


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
            fewer = len(new["providers"]) < len(old["providers"])
            d.add(f"model {name}", "~", f"providers: {', '.join(old['providers'])} -> {', '.join(new['providers'])}",
                  RESILIENCE if fewer else NEUTRAL)
        if old["price"] != new["price"] and old["price"] and new["price"]:
            up = any(new["price"][k] > old["price"][k] for k in new["price"])
            parts = [f"{k} {_usd_micros(old['price'][k])} -> {_usd_micros(new['price'][k])}"
                     for k in ("input", "cached_input", "output", "reasoning") if old["price"][k] != new["price"][k]]
            d.add(f"model {name}", "~", "price per 1M tokens: " + ", ".join(parts), SPEND if up else NEUTRAL)


def _keys(d: Diff, a: dict[str, Any], b: dict[str, Any]) -> None:
    for vid in sorted(b.keys() - a.keys()):
        k = b[vid]
        who = ", ".join(x for x in (k.get("principal"), k.get("team") and f"team {k['team']}") if x)
        d.add(f"vk {vid}", "+", f"new key{f' ({who})' if who else ''} may call: {', '.join(sorted(k['routes']))}",
              WIDENS if k["status"] == "active" else NEUTRAL)
    for vid in sorted(a.keys() - b.keys()):
        d.add(f"vk {vid}", "-", "removed", NARROWS)
    for vid in sorted(a.keys() & b.keys()):
        _key(d, vid, a[vid], b[vid])


def _key(d: Diff, vid: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    subject = f"vk {vid}"
    if old["status"] != new["status"]:
        d.add(subject, "~", f"status: {old['status']} -> {new['status']}", NARROWS if new["status"] == "revoked" else WIDENS)
    if old["expires_at"] != new["expires_at"]:
        later = new["expires_at"] is None or (old["expires_at"] is not None and new["expires_at"] > old["expires_at"])
        d.add(subject, "~", f"expires_at: {old['expires_at']} -> {new['expires_at']}", WIDENS if later else NARROWS)
    for name in ("principal", "team"):
        if old[name] != new[name]:
            d.add(subject, "~", f"{name}: {old[name]} -> {new[name]}", NEUTRAL)
    granted = sorted(new["routes"].keys() - old["routes"].keys())
    withdrawn = sorted(old["routes"].keys() - new["routes"].keys())
    if granted:
        d.add(subject, "+", f"may now call: {', '.join(granted)}", WIDENS)
    if withdrawn:
        d.add(subject, "-", f"may no longer call: {', '.join(withdrawn)}", NARROWS)
    for name in sorted(old["routes"].keys() & new["routes"].keys()):
        _route(d, subject, name, old["routes"][name], new["routes"][name])
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


def _cache(c: dict[str, Any]) -> str:
    extra = [x for x, on in (("override allowed", c["allow_override"]), ("salted", c["salt"])) if on]
    return str(c["mode"]) + (f" ({', '.join(extra)})" if extra else "")


def _route(d: Diff, subject: str, name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    ot, nt = [_target(t) for t in old["targets"]], [_target(t) for t in new["targets"]]
    if old["model"] != new["model"]:
        d.add(subject, "~", f"{name} now means {new['model']} (was {old['model']})", NEUTRAL)
    if ot and nt and ot[0] != nt[0]:
        d.add(subject, "~", f"{name}: {ot[0].split('/')[0]} -> {nt[0].split('/')[0]}"
              + (f" ({ot[0]} -> {nt[0]})" if ot[0].split('/')[1] != nt[0].split('/')[1] else ""), NEUTRAL)
    if ot[1:] != nt[1:]:
        fewer = len(nt) < len(ot)
        d.add(subject, "~", f"{name} fallback: {' -> '.join(ot) or '-'}  =>  {' -> '.join(nt) or '-'}",
              RESILIENCE if fewer else NEUTRAL)
    lost = sorted(set(old["fallback_on"]) - set(new["fallback_on"]))
    gained = sorted(set(new["fallback_on"]) - set(old["fallback_on"]))
    if (lost or gained) and len(nt) > 1 and len(ot) > 1:
        d.add(subject, "~", f"{name} falls back on: {', '.join(old['fallback_on'])} -> {', '.join(new['fallback_on'])}",
              RESILIENCE if lost else NEUTRAL)
    if old["retries"] != new["retries"]:
        d.add(subject, "~", f"{name} retries: {old['retries']} -> {new['retries']}",
              RESILIENCE if new["retries"] < old["retries"] else NEUTRAL)


def _budgets(d: Diff, a: dict[str, Any], b: dict[str, Any]) -> None:
    for inst in sorted(b.keys() - a.keys()):
        x = b[inst]
        d.add(f"budget {inst}", "+", f"{_usd_micros(x['limit_micros'])} per {x['window']} on {x['scope']} {x['target']}", NARROWS)
    for inst in sorted(a.keys() - b.keys()):
        d.add(f"budget {inst}", "-", "removed", SPEND)
    for inst in sorted(a.keys() & b.keys()):
        old, new = a[inst], b[inst]
        if old["limit_micros"] != new["limit_micros"]:
            up = new["limit_micros"] > old["limit_micros"]
            d.add(f"budget {inst}", "~", f"limit {_usd_micros(old['limit_micros'])} -> {_usd_micros(new['limit_micros'])}"
                  + f" per {new['window']}", SPEND if up else NARROWS)
        for name, label in (("block_bp", "block"), ("warn_bp", "warn")):
            if old[name] != new[name]:
                up = (new[name] or 0) > (old[name] or 0) or new[name] is None
                d.add(f"budget {inst}", "~", f"{label} threshold {_pct(old[name])} -> {_pct(new[name])}",
                      SPEND if up and label == "block" else NEUTRAL)
        for name in ("window", "timezone"):
            if old[name] != new[name]:
                d.add(f"budget {inst}", "~", f"{name}: {old[name]} -> {new[name]}", NEUTRAL)


def _pct(bp: int | None) -> str:
    return "none" if bp is None else f"{bp / 100:g}%"


def summary(d: Diff) -> str:
    counts = d.counts()
    if not d.changes:
        return "No changes: the policy decides every request as before."
    parts = ", ".join(f"{counts[k]} {k}" for k in CLASSES)
    return f"{len(d.changes)} change{'s' * (len(d.changes) != 1)}: {parts}."


def render_text(d: Diff) -> str:
    lines = [f"Policy diff {d.base_revision[:19]} -> {d.head_revision[:19]}", ""]
    subject = None
    for c in d.changes:
        if c.subject != subject:
            subject = c.subject
            lines.append(subject)
        lines.append(f"  {c.action} {c.what}  [{c.klass}]")
    lines += ["", summary(d)]
    return "\n".join(lines) + "\n"


def render_markdown(d: Diff, collapse_after: int = 3) -> str:
    lines = ["### Gatepost policy diff", "", f"`{d.base_revision[:19]}` → `{d.head_revision[:19]}`", "",
             f"**{summary(d)}**", ""]
    if not d.changes:
        return "\n".join(lines)
    by_subject: dict[str, list[Change]] = {}
    for c in d.changes:
        by_subject.setdefault(c.subject, []).append(c)
    for subject, changes in by_subject.items():
        rows = ["| | change | class |", "|---|---|---|"] + [
            f"| `{c.action}` | {_cell(c.what)} | {c.klass} |" for c in changes
        ]
        if len(changes) > collapse_after:
            lines += [f"<details><summary><b>{subject}</b> ({len(changes)} changes)</summary>", "", *rows, "", "</details>", ""]
        else:
            lines += [f"**{subject}**", "", *rows, ""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_json(d: Diff) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "base_revision": d.base_revision,
        "head_revision": d.head_revision,
        "summary": {"changes": len(d.changes), **{k.replace(" ", "_"): v for k, v in d.counts().items()}},
        "changes": [c.to_json() for c in d.changes],
    }
