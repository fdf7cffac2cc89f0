"""Parse `*.gp` files with lark into a `Document`: plain data plus the span of every key and value."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any, cast

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import LoadError
from ..loader import Document, SourceFile
from ..source import Path, Span

KINDS = {
    "gateway": "gateway",
    "provider": "providers",
    "model": "models",
    "team": "teams",
    "profile": "profiles",
    "virtual_key": "virtual_keys",
    "budget": "budgets",
    "rate_limit": "rate_limits",
}
INT = re.compile(r"^-?\d+$")
DECIMAL = re.compile(r"^-?\d+\.\d+$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$")
TOKEN_NAMES = {"WORD": "a name or value", "STRING": "a quoted string", "_NL": "a new line", "LBRACE": "'{'",
               "RBRACE": "'}'", "LSQB": "'['", "RSQB": "']'", "EQUAL": "'='", "COLON": "':'", "COMMA": "','",
               "SEMICOLON": "';'", "$END": "the end of the file"}
MAX_NESTING = 64


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
    too_deep = _too_deep(source)
    if too_deep is not None:
        raise too_deep
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
            raise LoadError("GP101", _unknown_kind(kind), _span(source.path, words[0]))
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


def _unknown_kind(kind: str) -> str:
    close = difflib.get_close_matches(kind, list(KINDS), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown kind of entity '{kind}'; {hint}kinds are: {', '.join(KINDS)}"


def _syntax_error(source: SourceFile, exc: UnexpectedInput) -> LoadError:
    line, col = exc.line if exc.line > 0 else 1, exc.column if exc.column > 0 else 1
    here = Span(source.path, line, col, line, col + 1)
    at_end = isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END")
    unclosed = _unclosed_brackets(source.text, len(source.text) if at_end else exc.pos_in_stream or 0)
    if at_end and unclosed:
        bracket, (open_line, open_col) = unclosed[-1]
        closer = "}" if bracket == "{" else "]"
        return LoadError("GP002", f"'{bracket}' opened at {open_line}:{open_col} is never closed: the file ends "
                         f"before its '{closer}'", Span(source.path, open_line, open_col, open_line, open_col + 1))
    if isinstance(exc, UnexpectedToken):
        found = "end of file" if exc.token.type == "$END" else f"'{exc.token}'"
        message = f"unexpected {found}; expected {_expected(exc.expected)}"
        first_word = source.text.splitlines()[line - 1].split(maxsplit=1)[:1] if line <= source.text.count("\n") + 1 else []
        if first_word and first_word[0] in KINDS and unclosed and unclosed[-1][0] == "{":
            open_line, open_col = unclosed[-1][1]
            message += f" (the '{{' opened at {open_line}:{open_col} is not closed before this {first_word[0]})"
    elif isinstance(exc, UnexpectedCharacters):
        position = exc.pos_in_stream or 0
        char = source.text[position] if position < len(source.text) else ""
        rest_of_line = source.text[position + 1:].split("\n", 1)[0]
        if char == '"' and not re.search(r'(?<!\\)"', rest_of_line):
            message = "unterminated string: the closing '\"' is missing on this line (strings end on the line they start)"
        else:
            message = f"unexpected character {char!r}; expected {_expected(exc.allowed)}" if char else "unexpected character"
    else:
        message = str(exc)
    return LoadError("GP002", message, here)


def _expected(tokens: Iterable[str]) -> str:
    names = sorted({TOKEN_NAMES[t] for t in tokens if t in TOKEN_NAMES})
    return ", ".join(names) if names else "something else"


def _brackets(text: str, end: int) -> Iterator[tuple[str, int, int]]:
    """Each bracket outside strings and comments before `end`, with its line and column."""
    line, col, i = 1, 1, 0
    in_string = in_comment = False
    while i < min(end, len(text)):
        ch = text[i]
        if ch == "\n":
            line, col, in_string, in_comment = line + 1, 1, False, False
            i += 1
            continue
        if in_comment:
            pass
        elif in_string:
            if ch == "\\":
                i, col = i + 1, col + 1
            elif ch == '"':
                in_string = False
        elif ch == "#":
            in_comment = True
        elif ch == '"':
            in_string = True
        elif ch in "{[]}":
            yield ch, line, col
        i, col = i + 1, col + 1


def _unclosed_brackets(text: str, end: int) -> list[tuple[str, tuple[int, int]]]:
    """The '{' and '[' still open at `end`, outermost first, each with its line and column."""
    stack: list[tuple[str, tuple[int, int]]] = []
    for ch, line, col in _brackets(text, end):
        if ch in "{[":
            stack.append((ch, (line, col)))
        elif stack and stack[-1][0] == ("{" if ch == "}" else "["):
            stack.pop()
    return stack


def _too_deep(source: SourceFile) -> LoadError | None:
    """GP002 at the first bracket nested deeper than MAX_NESTING, before parsing builds a tree that deep."""
    depth = 0
    for ch, line, col in _brackets(source.text, len(source.text)):
        depth = depth + 1 if ch in "{[" else max(depth - 1, 0)
        if depth > MAX_NESTING:
            return LoadError("GP002", f"'{ch}' nested {depth} deep: blocks, maps and lists nest at most "
                             f"{MAX_NESTING} deep", Span(source.path, line, col, line, col + 1))
    return None
