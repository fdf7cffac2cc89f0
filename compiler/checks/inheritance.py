"""`extends` names a profile, teams and principals are defined where definitions exist, no cycles."""

from __future__ import annotations

from collections.abc import Iterator

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic, Related, suggest
from ..resolve import profile_chain


def check_inheritance(ctx: Context) -> Iterator[Diagnostic]:
    policy = ctx.policy
    owners = [("profiles", pid, p.extends) for pid, p in policy.profiles.items()]
    owners += [("virtual_keys", vid, v.extends) for vid, v in policy.virtual_keys.items()]
    for section, owner, extends in owners:
        if extends is not None and not ctx.defined("profiles", extends):
            yield Diagnostic.of(
                codes.UNKNOWN_PROFILE,
                f"'{owner}' extends unknown profile '{extends}'",
                ctx.index.value(section, owner, "extends"),
                hint=suggest(extends, policy.profiles),
            )
    reported: set[frozenset[str]] = set()
    for pid in policy.profiles:
        chain, cycle = profile_chain(policy, pid)
        if not cycle:
            continue
        loop_start = policy.profiles[chain[-1]].extends
        loop = chain[chain.index(loop_start) :] if loop_start in chain else chain
        key = frozenset(loop)
        if key in reported:
            continue
        reported.add(key)
        first = min(loop)
        yield Diagnostic.of(
            codes.PROFILE_CYCLE,
            f"profile '{first}' extends itself through {' -> '.join([*rotate(loop, first), first])}",
            ctx.index.value("profiles", first, "extends"),
            related=[
                Related(span, f"'{p}' extends '{policy.profiles[p].extends}'")
                for p in sorted(loop)
                if p != first and (span := ctx.index.value("profiles", p, "extends")) is not None
            ],
        )
    yield from _teams_and_principals(ctx)


def rotate(loop: list[str], first: str) -> list[str]:
    i = loop.index(first)
    return loop[i:] + loop[:i]


def names_unknown_team(ctx: Context, team: str) -> bool:
    """True when a key's team is not defined although the policy defines teams."""
    teams_defined = bool(ctx.policy.teams) or any(s == "teams" for s, _ in ctx.broken)
    return teams_defined and not ctx.defined("teams", team)


def _teams_and_principals(ctx: Context) -> Iterator[Diagnostic]:
    teams = ctx.policy.teams
    for vid, vk in ctx.policy.virtual_keys.items():
        if vk.team is not None and names_unknown_team(ctx, vk.team):
            yield Diagnostic.of(
                codes.UNKNOWN_TEAM,
                f"virtual key '{vid}' names unknown team '{vk.team}'",
                ctx.index.value("virtual_keys", vid, "team"),
                hint=suggest(vk.team, teams) or "define it under `teams:` or fix the name",
            )
        team = teams.get(vk.team) if vk.team else None
        if team is not None and team.members is not None and vk.principal is not None:
            if vk.principal not in team.members:
                yield Diagnostic.of(
                    codes.UNKNOWN_PRINCIPAL,
                    f"principal '{vk.principal}' of virtual key '{vid}' is not a member of team '{vk.team}'",
                    ctx.index.value("virtual_keys", vid, "principal"),
                    hint=suggest(vk.principal, team.members) or f"add it to teams.{vk.team}.members",
                )
