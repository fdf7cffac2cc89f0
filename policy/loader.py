"""Read a policy directory: YAML files into plain data plus the position of every key and value.

PyYAML's constructors silently keep the last of two equal keys and forget positions, so the
loader works on composed nodes itself: it rejects repeated keys, keeps exact decimal text for
numbers (money must not pass through float) and records a Span for every path.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path as FsPath
from typing import Any

import yaml

from .errors import LoadError
from .source import Path, Span

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

_constructor = yaml.constructor.SafeConstructor()
_new_span = functools.partial(tuple.__new__, Span)
"""`Span(...)` without the keyword handling of a NamedTuple's `__new__`: one per node and key."""
_STR = "tag:yaml.org,2002:str"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"

ALIAS_ALLOWANCE = 100_000
"""Values that aliases may add to a file beyond its length in characters.

Without aliases a file holds fewer values than characters; each alias repeats what its anchor
holds, and anchors of aliases nested a few deep ("billion laughs") grow exponentially. Counting
converted values (one span each, so `len(doc.values)`) bounds a file at its length plus this,
refusing such a file in well under a second whatever its aliases would expand to."""

LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")
"""What YAML 1.1 counts as a line break (a CR LF pair counts once)."""
KEY_KINDS = {"int": "a number", "float": "a number", "bool": "a boolean", "null": "null", "timestamp": "a date"}
YAML11_ONLY_BOOLEANS = frozenset({"yes", "no", "on", "off"})
"""Plain keys YAML 1.1 (PyYAML) reads as booleans and YAML 1.2 (editors, `policy fmt`) as text:
`on` is a field name (`fallback.on`). Other plain keys that are not text, such as `1` or `true`
in `model_aliases`, are a problem, since readers would disagree about the name."""

POLICY_SUFFIXES = (".yaml", ".yml", ".gp")
TEST_SUFFIXES = ("_test.yaml", "_test.yml")
SYNTAX_HINTS = {
    "mapping values are not allowed": "a value that contains ': ' must be quoted, e.g. description: \"a: b\"",
    "found character '\\t'": "indent with spaces; YAML does not allow tabs",
}


@dataclass
class SourceFile:
    path: str
    text: str
    sha256: str

    def line(self, number: int) -> str:
        lines = self.text.splitlines()
        return lines[number - 1] if 0 < number <= len(lines) else ""




@dataclass
class Document:
    """One file's data with the span of every value (`values`) and every mapping key (`keys`)."""

    source: SourceFile
    data: Any
    values: dict[Path, Span] = field(default_factory=dict)
    keys: dict[Path, Span] = field(default_factory=dict)
    problems: list[LoadError] = field(default_factory=list)


def discover(root: FsPath) -> list[FsPath]:
    """Policy files below root in path order; dot-folders and `*_test.yaml` files are skipped."""
    found: list[FsPath] = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and path.name.endswith(POLICY_SUFFIXES) and not path.name.endswith(TEST_SUFFIXES):
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def read_source(root: FsPath, path: FsPath) -> SourceFile:
    rel = path.relative_to(root).as_posix()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LoadError("GP001", f"cannot read file: {exc.strerror or exc}", Span(rel, 1, 1, 1, 1)) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        col = len(raw[line_start : exc.start].decode("utf-8", "replace")) + 1
        raise LoadError(
            "GP001",
            f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            Span(rel, line, col, line, col + 1),
            hint="save the file as UTF-8",
        ) from exc
    return SourceFile(rel, text, hashlib.sha256(raw).hexdigest())


def parse(source: SourceFile) -> Document:
    """Compose one YAML document and convert it, recording spans; raises LoadError."""
    try:
        nodes = list(yaml.compose_all(source.text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = str(exc.problem or exc.context or "invalid YAML")
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context})"
        hint = next((h for problem, h in SYNTAX_HINTS.items() if problem in message), None)
        raise LoadError("GP002", message, Span(source.path, line, col, line, col + 1), hint) from exc
    except yaml.YAMLError as exc:
        raise LoadError("GP002", str(exc), Span(source.path, 1, 1, 1, 1)) from exc
    if len(nodes) > 1:
        raise LoadError(
            "GP005",
            "a policy file holds one YAML document, but a second one starts here",
            _second_document(source),
            hint="move what follows this `---` into a file of its own",
        )
    doc = Document(source, None)
    if nodes and nodes[0] is not None:
        doc.data = _Converter(doc).convert(nodes[0], ())
    return doc


def _second_document(source: SourceFile) -> Span:
    starts = [e for e in yaml.parse(source.text, Loader=_Loader) if isinstance(e, yaml.DocumentStartEvent)]
    start, end = starts[1].start_mark, starts[1].end_mark
    if start is None or end is None:
        return Span(source.path, 1, 1, 1, 1)
    return Span(source.path, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


def _alias_on(source: SourceFile, path: Path) -> Span | None:
    """The span of the outermost alias written on `path`: the one whose expansion led there.

    Composed nodes forget where an alias was written (it is its anchor's node), so this re-reads
    the file's events, which keep aliases, following the path through mappings and sequences."""
    frames: list[_Frame] = []
    for event in yaml.parse(source.text, Loader=_Loader):
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            frames.pop()
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        parent = frames[-1] if frames else None
        if parent is not None and (parent.skip or parent.key_next):
            where: Path | None = None
            if parent.key_next and isinstance(event, yaml.ScalarEvent):
                parent.key = event.value
            parent.key_next = False
        else:
            where = parent.child() if parent is not None else ()
            start, end = event.start_mark, event.end_mark
            if isinstance(event, yaml.AliasEvent) and path[: len(where)] == where and start and end:
                return Span(source.path, start.line + 1, start.column + 1, end.line + 1, end.column + 1)
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            mapping = isinstance(event, yaml.MappingStartEvent)
            frames.append(_Frame(where or (), mapping, skip=where is None, key_next=mapping and where is not None))
    return None


@dataclass
class _Frame:
    """A mapping or sequence being read by `_alias_on`; `skip` for one inside a complex key."""

    path: Path
    mapping: bool
    skip: bool
    key_next: bool
    key: str = ""
    index: int = 0

    def child(self) -> Path:
        if self.mapping:
            self.key_next = True
            return (*self.path, self.key)
        self.index += 1
        return (*self.path, self.index - 1)


class _Converter:
    """Composed nodes of one file to plain data, recording the span of every value and key in `doc`.

    Every node converted passes through `convert`, once per path: an alias is converted again at
    each place it is used.
    """

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.file = doc.source.path
        self.values = doc.values
        self.keys = doc.keys
        self.active: set[int] = set()
        self.bound = len(doc.source.text) + ALIAS_ALLOWANCE
        """At most this many values (one span each): the bound on what aliases may expand to."""
        breaks = sum(doc.source.text.count(mark) for mark in LINE_BREAKS)
        self.line_numbers = list(range(1, breaks + 3))
        """Line `i + 1` at index `i`, for each line YAML can count: the spans of a line share its
        number (an int above 256 is an object of its own, and 50k keys have 1.2M spans of two)."""

    def span(self, node: yaml.Node) -> Span:
        start, end = node.start_mark, node.end_mark
        lines = self.line_numbers
        try:
            return _new_span((self.file, lines[start.line], start.column + 1, lines[end.line], end.column + 1))
        except IndexError:  # a mark past every line break counted: libyaml's to place, never seen
            return _new_span((self.file, start.line + 1, start.column + 1, end.line + 1, end.column + 1))

    def convert(self, node: yaml.Node, path: Path) -> Any:
        span = self.values[path] = self.span(node)
        if isinstance(node, yaml.ScalarNode):
            # A plain string is most of a policy; every other scalar is built by its tag.
            return node.value if node.tag == _STR else _scalar(node, span, self.doc)
        if len(self.values) > self.bound:
            raise LoadError(
                "GP007",
                f"YAML aliases expand this file to more than {self.bound:,} values",
                _alias_on(self.doc.source, path) or span,
                hint="write the values out, or share settings with a profile's `extends`",
            )
        if id(node) in self.active:
            raise LoadError("GP007", "recursive YAML alias", span)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
        finally:
            self.active.discard(id(node))
        raise LoadError("GP007", f"unsupported YAML node {node.tag}", span)

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        seen: dict[Any, Span] = {}
        problems = self.doc.problems
        for key_node, value_node in node.value:
            key_span = self.span(key_node)
            if key_node.tag == _MERGE:
                problems.append(
                    LoadError("GP007", "YAML merge keys (<<) are not supported; use a profile's `extends`", key_span)
                )
                continue
            if type(key_node) is not yaml.ScalarNode:
                problems.append(LoadError("GP104", "mapping keys must be plain strings", key_span))
                continue
            key = key_node.value
            if key_node.tag != _STR and not key_node.style and key.lower() not in YAML11_ONLY_BOOLEANS:
                kind = KEY_KINDS.get(key_node.tag.rpartition(":")[2], "not text")
                problems.append(
                    LoadError(
                        "GP104",
                        f"YAML reads the key `{key}` as {kind}, not as a name",
                        key_span,
                        hint=f"quote it, '{key}': ..., so every YAML reader sees the same name",
                    )
                )
            if key in seen:
                first = seen[key]
                problems.append(
                    LoadError(
                        "GP003",
                        f"key '{key}' is repeated in this mapping (first at line {first.line}); "
                        "YAML would silently keep only the last",
                        key_span,
                    )
                )
                continue
            seen[key] = key_span
            child = (*path, key)
            self.keys[child] = key_span
            result[key] = self.convert(value_node, child)
        return result


def _construct(node: yaml.ScalarNode) -> Any:
    """Construct a scalar without the constructor's object cache, which would grow forever."""
    constructors = _constructor.yaml_constructors
    build = constructors.get(node.tag) or constructors[None]
    return build(_constructor, node)


def _scalar(node: yaml.ScalarNode, span: Span, doc: Document) -> Any:
    """A scalar's value; an impossible date (2027-02-30) stays text for its field's type to report."""
    if node.tag == _TIMESTAMP:
        try:
            return _construct(node)
        except ValueError:
            return node.value
    if node.tag == _FLOAT:
        text = node.value.replace("_", "")
        try:
            number = Decimal(text)
        except InvalidOperation:
            return _construct(node)
        return number if number.is_finite() else _construct(node)
    try:
        return _construct(node)
    except (yaml.constructor.ConstructorError, ValueError) as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        doc.problems.append(LoadError("GP104", f"invalid scalar: {problem}", span))
        return node.value
