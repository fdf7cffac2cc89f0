"""`policy fmt`: one canonical layout for policy YAML, comments kept.

Sections come in the language's order, each entity's fields in a fixed order (identity first,
then settings), two-space indentation, lists indented under their key. Entities keep the order
their authors gave them, and scalars keep their spelling (quotes, `2.50`); ruamel.yaml's
round-trip mode keeps those (PyYAML does not).

Comments are placed by this module, not by ruamel (which hangs a comment on the key before it,
so a moved section would take its neighbour's comment along). A comment line belongs to the key
or list item that follows it and moves with it, indented like it; a comment at the end of a line
stays on that line; the comment lines at the top of a file, up to the first blank line (or the
editor modelines), stay at the top; blank lines are kept, runs of them collapsed to one. The
layout is a fixed point: formatting a formatted file changes nothing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.docinfo import DocInfo, version
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

NodePath = tuple[str | int, ...]
MODELINE = "# yaml-language-server:"

SECTION_ORDER = ("gateway", "providers", "models", "teams", "profiles", "virtual_keys", "budgets", "rate_limits")
SETTINGS = ("models_allowed", "model_aliases", "fallback", "cache")
FIELD_ORDER: dict[str, tuple[str, ...]] = {
    "gateway": (
        "header_prefix", "client_deadline_s", "max_body_bytes", "max_answer_bytes", "max_event_bytes",
        "header_timeout_s", "body_timeout_s", "idle_timeout_s", "max_header_bytes", "max_headers",
        "max_connections", "max_in_flight",
        "admin",
        "circuit", "telemetry", "description",
    ),
    "providers": ("type", "base_url", "api_version", "api_key", "api_keys", "deployments",
                  "region", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                  "project", "location", "credentials", "model_ids",
                  "timeouts", "circuit", "description"),
    "models": ("providers", "price", "description"),
    "teams": ("description", "members", "defaults"),
    "profiles": ("extends", "description", *SETTINGS),
    "virtual_keys": ("key_sha256", "key_prefix", "principal", "team", "extends", "status", "expires_at",
                     "description", *SETTINGS),
    "budgets": ("scope", "target", "window", "timezone", "limit_usd", "on_breach", "description"),
    "rate_limits": ("scope", "target", "models", "requests", "tokens", "in_flight", "description"),
}
NESTED_ORDER: dict[str, tuple[str, ...]] = {
    "price": ("input", "cached_input", "output", "reasoning"),
    "fallback": ("on", "chain", "retries"),
    "cache": ("mode", "allow_override", "salt"),
    "on_breach": ("warn", "block"),
    "timeouts": ("connect_s", "read_s", "total_s"),
    "circuit": ("failures", "cooldown_s"),
    "admin": ("token",),
    "telemetry": ("endpoint", "service_name", "sampling_ratio", "record_content"),
    "api_keys": ("id", "api_key", "weight", "base_url", "api_version"),
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
            for item in value if isinstance(value, CommentedSeq) else (value,):
                _order(item, NESTED_ORDER[key])
                _nested(item)


def _without_comments(value: Any) -> Any:
    if isinstance(value, CommentedMap):
        bare = CommentedMap()
        if value.fa.flow_style():
            bare.fa.set_flow_style()
        for key, item in value.items():
            bare[key] = _without_comments(item)
        return bare
    if isinstance(value, CommentedSeq):
        seq = CommentedSeq(_without_comments(item) for item in value)
        if value.fa.flow_style():
            seq.fa.set_flow_style()
        return seq
    return value


@dataclass
class _Layout:
    """The lines of a file that are not data: where each comment and blank line belongs."""

    header: list[str] = field(default_factory=list)
    leading: dict[NodePath, list[str]] = field(default_factory=dict)
    end_of_line: dict[NodePath, tuple[int, str]] = field(default_factory=dict)
    trailing: list[str] = field(default_factory=list)


def _walk(node: Node, path: NodePath, anchors: list[tuple[NodePath, int]], ends: dict[int, int],
          inner: set[int], seen: set[int]) -> None:
    if id(node) in seen:
        return
    seen.add(id(node))
    end_line, end_col = node.end_mark.line, node.end_mark.column
    ends[end_line] = max(ends.get(end_line, 0), end_col)
    if isinstance(node, ScalarNode):
        if end_line > node.start_mark.line:
            last = end_line if end_col > 0 else end_line - 1
            inner.update(range(node.start_mark.line + 1, last + 1))
            if node.style not in ("|", ">"):
                inner.add(node.start_mark.line)
        return
    if isinstance(node, MappingNode):
        for key, value in node.value:
            anchors.append(((*path, str(key.value)), key.start_mark.line))
            ends[key.end_mark.line] = max(ends.get(key.end_mark.line, 0), key.end_mark.column)
            _walk(value, (*path, str(key.value)), anchors, ends, inner, seen)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            anchors.append(((*path, i), item.start_mark.line))
            _walk(item, (*path, i), anchors, ends, inner, seen)


def _anchors(root: Node) -> tuple[list[tuple[NodePath, int]], dict[int, int], set[int]]:
    """Every mapping key and list item in document order with its line; where nodes end; lines inside scalars."""
    anchors: list[tuple[NodePath, int]] = []
    ends: dict[int, int] = {}
    inner: set[int] = set()
    _walk(root, (), anchors, ends, inner, set())
    return anchors, ends, inner


def _collapse_blanks(lines: list[str]) -> list[str]:
    return [line for i, line in enumerate(lines) if line or i == 0 or lines[i - 1]]


def _without_leading_blanks(lines: list[str]) -> list[str]:
    while lines and not lines[0]:
        lines = lines[1:]
    return lines


def _split_header(top: list[str]) -> tuple[list[str], list[str]]:
    if "" in top:
        cut = top.index("") + 1
        return top[:cut], top[cut:]
    modelines = 0
    while modelines < len(top) and top[modelines].startswith(MODELINE):
        modelines += 1
    return top[:modelines], top[modelines:]


def _end_of_line_comment(line: str, start: int) -> tuple[int, str] | None:
    """The comment ending a line of data, with its column (aligned comments stay aligned)."""
    at = line.find("#", start)
    return (at, line[at:].rstrip()) if at >= 0 else None


def _layout(text: str, root: Node) -> _Layout:
    anchors, ends, inner = _anchors(root)
    first_at_line: dict[int, NodePath] = {}
    for path, line_number in anchors:
        first_at_line.setdefault(line_number, path)
    layout = _Layout()
    pending: list[str] = []
    current: NodePath | None = None
    for number, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if number in inner:
            continue
        if not stripped or stripped.startswith("#"):
            pending.append(stripped)
            continue
        anchor = first_at_line.get(number)
        if anchor is not None:
            if current is None:
                layout.header, pending = _split_header(_without_leading_blanks(_collapse_blanks(pending)))
            layout.leading[anchor] = _collapse_blanks(pending)
            pending = []
            current = anchor
        comment = _end_of_line_comment(line, ends.get(number, 0))
        if comment is not None and current is not None:
            existing = layout.end_of_line.get(current)
            layout.end_of_line[current] = (existing[0], f"{existing[1]} {comment[1]}") if existing else comment
    layout.trailing = _collapse_blanks(pending)
    return layout


def _place(layout: _Layout, clean: str, root: Node) -> str:
    anchors, _, _ = _anchors(root)
    line_of = dict(anchors)
    leading: dict[int, list[str]] = {}
    end_of_line: dict[int, list[tuple[int, str]]] = {}
    lost: list[str] = []
    for path, block in layout.leading.items():
        if path in line_of:
            leading.setdefault(line_of[path], []).extend(block)
        else:
            lost.extend(line for line in block if line)
    for path, comment in layout.end_of_line.items():
        if path in line_of:
            end_of_line.setdefault(line_of[path], []).append(comment)
        else:
            lost.append(comment[1])
    out = list(layout.header)
    for number, line in enumerate(clean.splitlines()):
        block = _collapse_blanks(leading.get(number, []))
        if not out or out == layout.header:
            block = _without_leading_blanks(block)
        indent = line[: len(line) - len(line.lstrip())]
        out.extend(indent + b if b else "" for b in block)
        out.append(_with_comment(line, end_of_line.get(number, [])))
    trailing = _collapse_blanks([*layout.trailing, *lost])
    while trailing and not trailing[-1]:
        trailing.pop()
    out.extend(trailing)
    return "\n".join(out) + "\n"


def _with_comment(line: str, comments: list[tuple[int, str]]) -> str:
    if not comments:
        return line
    column = max(comments[0][0], len(line) + 2)
    return line.ljust(column) + " ".join(text for _, text in comments)


def _canonical_order(data: CommentedMap) -> None:
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


def _parse(yaml: YAML, text: str) -> tuple[_Layout | None, Any]:
    """The text's layout, read from its node tree, and the data built from that same tree (a
    `yaml.load` beside a `yaml.compose` would parse the text twice: most of formatting's time)."""
    yaml.doc_infos.append(DocInfo(requested_version=version(yaml.version)))
    yaml.tags = {}
    constructor, parser = yaml.get_constructor_parser(text)
    try:
        root = constructor.composer.get_single_node()
        if root is None:
            return None, None
        layout = _layout(text, root)
        return layout, constructor.construct_document(root)
    finally:
        parser.dispose()
        yaml.reader.reset_reader()
        yaml.scanner.reset_scanner()


def format_text(text: str) -> str:
    """The canonical layout of one policy file's text."""
    yaml = _yaml()
    layout, data = _parse(yaml, text)
    if layout is None or not isinstance(data, CommentedMap) or not data:
        return text
    bare = _without_comments(data)
    _canonical_order(bare)
    out = io.StringIO()
    yaml.dump(bare, out)
    clean = out.getvalue()
    return _place(layout, clean, _yaml().compose(clean))
