"""`policy fmt`: one canonical layout for policy YAML, comments kept.

Sections come in the language's order, each entity's fields in a fixed order (identity first,
then settings), two-space indentation, lists indented under their key. Entities keep the order
their authors gave them, and scalars keep their spelling (quotes, `2.50`). ruamel.yaml's
round-trip mode is what keeps comments: PyYAML drops them.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

SECTION_ORDER = ("gateway", "providers", "models", "teams", "profiles", "virtual_keys", "budgets")
SETTINGS = ("models_allowed", "model_aliases", "fallback", "cache")
FIELD_ORDER: dict[str, tuple[str, ...]] = {
    "gateway": ("header_prefix", "client_deadline_s", "max_body_bytes", "circuit", "description"),
    "providers": ("type", "base_url", "api_version", "api_key", "deployments", "timeouts", "circuit", "description"),
    "models": ("providers", "price", "description"),
    "teams": ("description", "members", "defaults"),
    "profiles": ("extends", "description", *SETTINGS),
    "virtual_keys": ("key_sha256", "key_prefix", "principal", "team", "extends", "status", "expires_at",
                     "description", *SETTINGS),
    "budgets": ("scope", "target", "window", "timezone", "limit_usd", "on_breach", "description"),
}
NESTED_ORDER: dict[str, tuple[str, ...]] = {
    "price": ("input", "cached_input", "output", "reasoning"),
    "fallback": ("on", "chain", "retries"),
    "cache": ("mode", "allow_override", "salt"),
    "on_breach": ("warn", "block"),
    "timeouts": ("connect_s", "read_s", "total_s"),
    "circuit": ("failures", "cooldown_s"),
    "defaults": SETTINGS,
}


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 120
    return yaml


def _order(mapping: Any, order: tuple[str, ...]) -> None:
    if not isinstance(mapping, CommentedMap):
        return
    known = [k for k in order if k in mapping]
    rest = [k for k in mapping if k not in order]
    for key in [*known, *rest]:
        mapping.move_to_end(key)


def _nested(mapping: Any) -> None:
    if not isinstance(mapping, CommentedMap):
        return
    for key, value in mapping.items():
        if key in NESTED_ORDER:
            _order(value, NESTED_ORDER[key])
            _nested(value)


def format_text(text: str) -> str:
    """The canonical layout of one policy file's text."""
    yaml = _yaml()
    data = yaml.load(text)
    if not isinstance(data, CommentedMap):
        return text
    _order(data, SECTION_ORDER)
    for section, body in data.items():
        order = FIELD_ORDER.get(section)
        if order is None:
            continue
        if section == "gateway":
            _order(body, order)
            _nested(body)
            continue
        if isinstance(body, CommentedMap):
            for entity in body.values():
                _order(entity, order)
                _nested(entity)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()
