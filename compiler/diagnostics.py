"""Diagnostics: one structured record per problem, rendered as text, JSON or GitHub annotations."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from policy.source import Span

from . import codes
from .codes import Code, Severity
from .redact import redact_line, redact_text

JSON_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Related:
    span: Span
    message: str


@dataclass(frozen=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span | None
    hint: str | None = None
    related: tuple[Related, ...] = field(default=())
    secret: str | None = field(default=None, repr=False)
    """The credential this diagnostic is about: never printed, masked wherever it would be."""

    @classmethod
    def of(
        cls,
        code: Code,
        message: str,
        span: Span | None,
        hint: str | None = None,
        related: Iterable[Related] = (),
        secret: str | None = None,
    ) -> Diagnostic:
        return cls(code.code, code.severity, message, span, hint, tuple(related), secret)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str, str]:
        if self.span is None:
            return ("", 0, 0, self.code, self.message)
        return (self.span.file, self.span.line, self.span.col, self.code, self.message)

    def to_json(self, secrets: Iterable[str] = ()) -> dict[str, object]:
        data: dict[str, object] = {
            "code": self.code,
            "severity": self.severity.value,
            "message": redact_text(self.message, secrets),
            "file": self.span.file if self.span else None,
            "line": self.span.line if self.span else None,
            "col": self.span.col if self.span else None,
            "end_line": self.span.end_line if self.span else None,
            "end_col": self.span.end_col if self.span else None,
            "hint": None if self.hint is None else redact_text(self.hint, secrets),
            "related": [
                {"file": r.span.file, "line": r.span.line, "col": r.span.col, "message": redact_text(r.message, secrets)}
                for r in self.related
            ],
        }
        return data


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """A "did you mean" hint for a misspelt name, or None when nothing is close.

    Addresses of one domain all look alike, so an email is compared by the part before '@'. Names
    and values are case-sensitive, so one that differs only in case ('Week', 'GPT-4o') is named first.
    """
    pool = sorted(set(candidates))
    same_but_case = next((c for c in pool if c.lower() == name.lower() and c != name), None)
    if same_but_case is not None:
        return f"did you mean '{same_but_case}'?"
    local, at, domain = name.partition("@")
    same_domain = {c.partition("@")[0]: c for c in pool if at and c.partition("@")[2] == domain}
    if same_domain:
        matches = difflib.get_close_matches(local, sorted(same_domain), n=1, cutoff=0.6)
        return f"did you mean '{same_domain[matches[0]]}'?" if matches else None
    matches = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


def secrets_of(diagnostics: Iterable[Diagnostic]) -> set[str]:
    return {d.secret for d in diagnostics if d.secret}


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    unique = {(d.sort_key(), d.hint, d.related): d for d in diagnostics}
    return [unique[k] for k in sorted(unique, key=lambda k: k[0])]


def summary_line(diagnostics: Iterable[Diagnostic]) -> str:
    items = list(diagnostics)
    errors = sum(1 for d in items if d.is_error)
    warnings = len(items) - errors
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"


def render_text(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str]) -> str:
    """Compiler-style text: `file:line:col: severity[CODE]: message`, the line, a caret, a hint."""
    items = list(diagnostics)
    secrets = secrets_of(items)
    return "\n".join(_render_one(d, sources, secrets) for d in items)


def _render_one(d: Diagnostic, sources: Mapping[str, str], secrets: set[str]) -> str:
    where = f"{d.span}: " if d.span else ""
    out = [f"{where}{d.severity.value}[{d.code}]: {redact_text(d.message, secrets)}"]
    if d.span is not None:
        out.extend(_excerpt(d, d.span, sources, secrets))
    for rel in d.related:
        out.append(f"  note: {redact_text(rel.message, secrets)} at {rel.span}")
    if d.hint:
        out.append(f"  = hint: {redact_text(d.hint, secrets)}")
    return "\n".join(out) + "\n"


def _excerpt(d: Diagnostic, span: Span, sources: Mapping[str, str], secrets: set[str]) -> list[str]:
    text = sources.get(span.file)
    if text is None:
        return []
    lines = text.splitlines()
    if not 0 < span.line <= len(lines):
        return []
    original = lines[span.line - 1].expandtabs(1)
    gutter = " " * len(str(span.line))
    end = span.end_col if span.end_line == span.line and span.end_col > span.col else span.col + 1
    end = min(end, max(len(original) + 1, span.col + 1))
    # The span holds the secret as written (quoted or escaped) when the line lacks it verbatim.
    spelled = d.secret is not None and d.secret not in original and span.end_line == span.line
    regions = [(span.col - 1, end - 1, d.secret)] if d.secret and spelled else []
    redacted = redact_line(original, secrets, regions)
    line, col, end = redacted.text, redacted.column(span.col), redacted.column(end, end=True)
    caret = " " * (col - 1) + "^" * max(1, end - col)
    return [f"{gutter} |", f"{span.line} | {line}", f"{gutter} | {caret}"]


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    items = list(diagnostics)
    secrets = secrets_of(items)
    payload = {
        "format_version": JSON_FORMAT_VERSION,
        "summary": {
            "errors": sum(1 for d in items if d.is_error),
            "warnings": sum(1 for d in items if not d.is_error),
        },
        "diagnostics": [d.to_json(secrets) for d in items],
    }
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def render_github(diagnostics: Iterable[Diagnostic], root_prefix: str = "") -> str:
    """GitHub Actions workflow commands, so a pull request shows each problem on its line."""
    items = list(diagnostics)
    secrets = secrets_of(items)
    out = []
    for d in items:
        command = "error" if d.is_error else "warning"
        props = [f"title={_escape_property(f'{d.code} {codes.BY_CODE[d.code].title}')}"]
        if d.span is not None:
            props = [
                f"file={_escape_property(root_prefix + d.span.file)}",
                f"line={d.span.line}",
                f"col={d.span.col}",
                *(
                    [f"endColumn={d.span.end_col}"]
                    if d.span.end_line == d.span.line and d.span.end_col > d.span.col
                    else []
                ),
                *props,
            ]
        message = redact_text(d.message + (f" ({d.hint})" if d.hint else ""), secrets)
        out.append(f"::{command} {','.join(props)}::{_escape_data(f'{d.code}: {message}')}")
    return "\n".join(out) + ("\n" if out else "")


def render_sarif(diagnostics: Iterable[Diagnostic], root_prefix: str = "", version: str = "0",
                 srcroot_uri: str | None = None) -> str:
    """SARIF 2.1.0, for GitHub code scanning and other SARIF consumers.

    Paths are relative to SRCROOT (`srcroot_uri`, a file URI ending in '/', when known). Every result
    has a location, as code scanning requires one: its file, or for a diagnostic about no file in
    particular (GP006 "no policy files found"), the policy directory itself at line 1.
    """
    items = list(diagnostics)
    secrets = secrets_of(items)
    used = sorted({d.code for d in items})
    rules = [
        {"id": code, "name": codes.BY_CODE[code].title.replace(" ", "-"),
         "shortDescription": {"text": codes.BY_CODE[code].title},
         "defaultConfiguration": {"level": codes.BY_CODE[code].severity.value}}
        for code in used
    ]
    results = []
    for d in items:
        results.append({
            "ruleId": d.code,
            "ruleIndex": used.index(d.code),
            "level": d.severity.value,
            "message": {"text": redact_text(d.message + (f" ({d.hint})" if d.hint else ""), secrets)},
            "locations": [{"physicalLocation": _sarif_location(d, root_prefix)}],
        })
    srcroot: dict[str, object] = {"description": {"text": "The root of the git repository holding the policy (else the directory policy compile ran in)"}}
    if srcroot_uri is not None:
        srcroot["uri"] = srcroot_uri
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "gatepost", "version": version, "rules": rules}},
                  "originalUriBaseIds": {"SRCROOT": srcroot},
                  "results": results}],
    }
    return json.dumps(sarif, indent=2, sort_keys=True) + "\n"


def _sarif_location(d: Diagnostic, root_prefix: str) -> dict[str, object]:
    if d.span is None:
        return {"artifactLocation": {"uri": root_prefix or "./", "uriBaseId": "SRCROOT"}, "region": {"startLine": 1}}
    region = {"startLine": d.span.line, "startColumn": d.span.col}
    if d.span.end_line >= d.span.line:
        region.update(endLine=d.span.end_line, endColumn=max(d.span.end_col, d.span.col + 1))
    return {"artifactLocation": {"uri": root_prefix + d.span.file, "uriBaseId": "SRCROOT"}, "region": region}
