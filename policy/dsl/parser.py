"""Parse `*.gp` files with lark into a `Document`: plain data plus the span of every key and value."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any, cast

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..loader import Document, LoadError, SourceFile
from ..source import Path, Span

KINDS = {
    "gateway": "gateway",
    "provider": "providers",
    "model": "models",
    "team": "teams",
    "profile": "profiles",
    "virtual_key": "virtual_keys",
    "budget": "budgets",
}
INT = re.compile(r"^-?\d+$")
DECIMAL = re.compile(r"^-?\d+\.\d+$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$")
TOKEN_NAMES = {"WORD": "a name or value", "STRING": "a quoted string", "_NL": "a new line", "LBRACE": "'{'",
               "RBRACE": "'}'", "LSQB": "'['", "RSQB": "']'", "EQUAL": "'='", "COLON": "':'", "COMMA": "','",
               "SEMICOLON": "';'", "$END": "the end of the file"}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files("policy.dsl").joinpath("grammar.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _span(file: str, item: Token | Tree[Any]) -> Span:
    if isinstance(item, Token):
        line, col = item.line or 1, item.column or 1
        return Span(file, line, col, item.end_line or line, item.end_column or col + 1)
    meta = item.meta
    return Span(file, meta.line, meta.column, meta.end_line, meta.end_column)


def scalar(text: str) -> Any:
    """A bare word as YAML would read it: booleans, null, integers, exact decimals, timestamps, text."""
    if text in ("true", "false"):
        return text == "true"
    if text in ("null", "~"):
        return None
    if INT.match(text):
        return int(text)
    if DECIMAL.match(text):
        return Decimal(text)
    if DATETIME.match(text):
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
        return value if "T" in text else value.date()
    return text


def _unquote(token: Token) -> str:
    import json

    text: str = json.loads(str(token))
    return text


class _Builder:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.file = doc.source.path

    def value(self, node: Tree[Any] | Token, path: Path) -> Any:
        self.doc.values[path] = _span(self.file, node)
        if isinstance(node, Tree) and node.data == "string":
            return _unquote(cast(Token, node.children[0]))
        if isinstance(node, Tree) and node.data == "word":
            return scalar(str(node.children[0]))
        if isinstance(node, Tree) and node.data == "list":
            return [self.value(child, (*path, i)) for i, child in enumerate(node.children)]
        if isinstance(node, Tree) and node.data == "map":
            return self.mapping(node.children, path, pair=True)
        raise LoadError("GP002", f"unexpected {node!r}", _span(self.file, node))

    def mapping(self, items: list[Any], path: Path, pair: bool) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for item in items:
            key_token, value_node = item.children
            key = _unquote(key_token) if key_token.type == "STRING" else str(key_token)
            key_span = _span(self.file, key_token)
            if key in result:
                first = self.doc.keys[(*path, key)]
                self.doc.problems.append(LoadError(
                    "GP003", f"key '{key}' is set twice in this block (first at line {first.line})", key_span))
                continue
            self.doc.keys[(*path, key)] = key_span
            result[key] = self.value(value_node, (*path, key))
        return result


def parse_dsl(source: SourceFile) -> Document:
    try:
        tree = _parser().parse(source.text + "\n")
    except UnexpectedInput as exc:
        raise _syntax_error(source, exc) from exc
    doc = Document(source, {})
    builder = _Builder(doc)
    data: dict[str, Any] = {}
    doc.values[()] = Span(source.path, 1, 1, 1, 1)
    for entity in tree.children:
        assert isinstance(entity, Tree)
        words = [c for c in entity.children if isinstance(c, Token)]
        block = cast(Tree[Any], entity.children[-1])
        kind = str(words[0])
        section = KINDS.get(kind)
        if section is None:
            known = ", ".join(KINDS)
            raise LoadError("GP101", f"unknown kind of entity '{kind}'; kinds are: {known}", _span(source.path, words[0]))
        if section == "gateway":
            if len(words) > 1:
                raise LoadError("GP104", "gateway takes no name: `gateway { ... }`", _span(source.path, words[1]))
            doc.keys[("gateway",)] = _span(source.path, words[0])
            doc.values[("gateway",)] = _span(source.path, block)
            if "gateway" in data:
                doc.problems.append(LoadError("GP105", "gateway is defined twice in this file", _span(source.path, words[0])))
                continue
            data["gateway"] = builder.mapping(block.children, ("gateway",), pair=False)
            continue
        if len(words) < 2:
            raise LoadError("GP103", f"{kind} needs a name: `{kind} <id> {{ ... }}`", _span(source.path, words[0]))
        entity_id = str(words[1])
        entities = data.setdefault(section, {})
        doc.keys.setdefault((section,), _span(source.path, words[0]))
        if entity_id in entities:
            first = doc.keys[(section, entity_id)]
            doc.problems.append(LoadError(
                "GP105", f"{kind} '{entity_id}' is defined more than once (first at line {first.line})",
                _span(source.path, words[1])))
            continue
        doc.keys[(section, entity_id)] = _span(source.path, words[1])
        doc.values[(section, entity_id)] = _span(source.path, block)
        entities[entity_id] = builder.mapping(block.children, (section, entity_id), pair=False)
    doc.data = data
    return doc


def _syntax_error(source: SourceFile, exc: UnexpectedInput) -> LoadError:
    line, col = exc.line if exc.line > 0 else 1, exc.column if exc.column > 0 else 1
    if isinstance(exc, UnexpectedToken):
        found = "the end of the file" if exc.token.type == "$END" else f"'{exc.token}'"
        expected = sorted({TOKEN_NAMES.get(t, t) for t in exc.expected if not t.startswith("__")})
        message = f"unexpected {found}; expected {', '.join(expected[:6])}"
    elif isinstance(exc, UnexpectedCharacters):
        position = exc.pos_in_stream or 0
        message = f"unexpected character {source.text[position]!r}" if position < len(source.text) else "unexpected character"
    elif isinstance(exc, UnexpectedEOF):
        message = "the file ends inside a block; a '}' or ']' is missing"
    else:
        message = str(exc)
    return LoadError("GP002", message, Span(source.path, line, col, line, col + 1))
