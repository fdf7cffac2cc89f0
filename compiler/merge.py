"""Merge pass: every file's sections into one policy; the same id in two files is an error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policy.loader import Document
from policy.models import ENTITY_SECTIONS, SECTIONS
from policy.source import Span

from . import codes
from .diagnostics import Diagnostic, Related, suggest
from .index import SourceIndex
from .naming import singular


@dataclass
class RawPolicy:
    gateway: Any = None
    sections: dict[str, dict[str, Any]] = field(default_factory=lambda: {s: {} for s in ENTITY_SECTIONS})


def merge(documents: list[Document], index: SourceIndex) -> tuple[RawPolicy, list[Diagnostic]]:
    raw = RawPolicy()
    diagnostics: list[Diagnostic] = []
    origin: dict[tuple[str, str], Span] = {}
    for doc in documents:
        index.files[doc.source.path] = doc.source
        dropped: list[tuple[str, ...]] = []
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            diagnostics.append(
                Diagnostic.of(
                    codes.NOT_A_MAPPING,
                    "a policy file must be a mapping of sections (gateway, providers, models, ...)",
                    doc.values.get(()),
                )
            )
            continue
        for section, body in doc.data.items():
            key_span = doc.keys.get((section,))
            if section not in SECTIONS:
                diagnostics.append(
                    Diagnostic.of(
                        codes.UNKNOWN_SECTION,
                        f"unknown section '{section}'",
                        key_span,
                        hint=suggest(str(section), SECTIONS) or f"sections are: {', '.join(SECTIONS)}",
                    )
                )
                dropped.append((section,))
                continue
            if section == "gateway":
                if body is None:
                    continue
                if ("gateway", "") in origin:
                    first = origin[("gateway", "")]
                    diagnostics.append(
                        Diagnostic.of(
                            codes.DUPLICATE_ENTITY,
                            "section 'gateway' is defined more than once",
                            key_span,
                            related=[Related(first, "first defined here")],
                        )
                    )
                    dropped.append((section,))
                    continue
                if key_span:
                    origin[("gateway", "")] = key_span
                raw.gateway = body
                _own_children(doc, index, body)
                continue
            if body is None:
                continue
            if not isinstance(body, dict):
                diagnostics.append(
                    Diagnostic.of(
                        codes.NOT_A_MAPPING,
                        f"section '{section}' must be a mapping of id to definition",
                        doc.values.get((section,)),
                    )
                )
                dropped.append((section,))
                continue
            for entity_id, value in body.items():
                span = doc.keys.get((section, entity_id))
                if (section, entity_id) in origin:
                    first = origin[(section, entity_id)]
                    diagnostics.append(
                        Diagnostic.of(
                            codes.DUPLICATE_ENTITY,
                            f"{singular(section)} '{entity_id}' is defined more than once",
                            span,
                            hint="an id names one entity in the whole repository; rename or remove one",
                            related=[Related(first, "first defined here")],
                        )
                    )
                    dropped.append((section, entity_id))
                    continue
                if span:
                    origin[(section, entity_id)] = span
                raw.sections[section][entity_id] = value
                index.own((section, entity_id), (doc.values, doc.keys))
        _index_roots(doc, index, dropped)
    return raw, diagnostics


def _own_children(doc: Document, index: SourceIndex, gateway: Any) -> None:
    """The gateway's settings are looked up in the spans of the file it was kept from."""
    children = gateway if isinstance(gateway, dict) else range(len(gateway)) if isinstance(gateway, list) else ()
    for child in children:
        index.own(("gateway", child), (doc.values, doc.keys))


def _index_roots(doc: Document, index: SourceIndex, dropped: list[tuple[str, ...]]) -> None:
    """The spans of the file's root and of its sections that were kept; what is below them is
    looked up in the file's own spans (`SourceIndex.owners`), where it was kept from that file."""
    for path in [(), *((section,) for section in doc.data)]:
        if path in dropped:
            continue
        for source, target in ((doc.values, index.values), (doc.keys, index.keys)):
            span = source.get(path)
            if span is not None:
                target[path] = span
