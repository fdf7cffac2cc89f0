"""Policy data written as DSL text: how `examples/acme-dsl` was made from `examples/acme`, and a way
to move a repository to the DSL file by file."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .parser import KINDS, scalar

KIND_OF = {section: kind for kind, section in KINDS.items()}
BARE = re.compile(r"^[A-Za-z0-9_.@*/+%$-]+(:[A-Za-z0-9_.@*/+%$-]+)*$")


def _atom(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if BARE.match(text) and scalar(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_atom(k)}: {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return _atom(value)


def to_dsl(data: dict[str, Any]) -> str:
    blocks = []
    for section, body in data.items():
        if section == "gateway":
            blocks.append(_block("gateway", body))
            continue
        for entity_id, fields in (body or {}).items():
            blocks.append(_block(f"{KIND_OF[section]} {entity_id}", fields))
    return "\n\n".join(blocks) + "\n"


def _block(head: str, fields: dict[str, Any]) -> str:
    lines = [f"{head} {{"] + [f"  {key} = {_value(value)}" for key, value in (fields or {}).items()] + ["}"]
    return "\n".join(lines)
