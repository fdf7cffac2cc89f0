"""What every semantic check reads: the validated policy, its source index and its resolution."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from policy.models import PolicyDocument, Settings
from policy.source import Path

from .index import SourceIndex
from .resolve import Resolved


@dataclass
class Context:
    policy: PolicyDocument
    index: SourceIndex
    broken: set[tuple[str, str]]
    resolved: Resolved
    now: datetime
    raw: dict[str, Any]
    in_git_repository: bool = False
    """Whether the policy is read from a git repository, where a committed secret stays in history."""

    def defined(self, section: str, entity_id: str) -> bool:
        """True for an entity that exists, even one whose own errors were already reported."""
        return entity_id in getattr(self.policy, section) or (section, entity_id) in self.broken

    def settings_levels(self) -> Iterator[tuple[Settings, Path]]:
        """Every place VK settings are written: team defaults, profiles, VKs."""
        for team_id, team in self.policy.teams.items():
            if team.defaults is not None:
                yield team.defaults, ("teams", team_id, "defaults")
        for profile_id, profile in self.policy.profiles.items():
            yield profile, ("profiles", profile_id)
        for vk_id, vk in self.policy.virtual_keys.items():
            yield vk, ("virtual_keys", vk_id)
