"""Validate pass: raw entities into pydantic models, every error located at the offending token."""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from policy.models import ENTITY_SECTIONS, Gateway, PolicyDocument
from policy.source import Path

from . import codes
from .diagnostics import Diagnostic, suggest
from .index import SourceIndex
from .merge import RawPolicy
from .naming import SINGULAR, describe

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+:-]*$")
M = typing.TypeVar("M", bound=BaseModel)
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+:-]*$")


@dataclass
class Validated:
    policy: PolicyDocument
    broken: set[tuple[str, str]] = field(default_factory=set)


def validate(raw: RawPolicy, index: SourceIndex) -> tuple[Validated, list[Diagnostic]]:
    diagnostics: list[Diagnostic] = []
    broken: set[tuple[str, str]] = set()
    gateway = None
    if raw.gateway is not None:
        gateway = _validate_entity(Gateway, raw.gateway, ("gateway",), index, diagnostics)
    sections: dict[str, dict[str, Any]] = {}
    field_sets: dict[frozenset[str], set[str]] = {}
    for section, model_cls in ENTITY_SECTIONS.items():
        valid: dict[str, Any] = {}
        for entity_id, value in raw.sections[section].items():
            if not isinstance(entity_id, str) or not ID_PATTERN.match(entity_id):
                diagnostics.append(
                    Diagnostic.of(
                        codes.INVALID_ID,
                        f"{SINGULAR[section]} id '{entity_id}' must start with a letter or digit and use only "
                        "letters, digits and . _ @ + : -",
                        index.key(section, entity_id),
                    )
                )
                broken.add((section, str(entity_id)))
                continue
            entity = _validate_entity(model_cls, value, (section, entity_id), index, diagnostics)
            if entity is None:
                broken.add((section, entity_id))
            else:
                valid[entity_id] = _sharing_fields_set(entity, field_sets)
        sections[section] = valid
    policy = PolicyDocument.model_construct(None, gateway=gateway, **sections)
    return Validated(policy, broken), diagnostics


def _sharing_fields_set(entity: BaseModel, field_sets: dict[frozenset[str], set[str]]) -> BaseModel:
    """`entity`, its set of the fields it was given shared with every entity given the same fields.

    Pydantic gives each model its own, 728 bytes once it holds five names: 36 MB for 50k keys,
    whose sets are a handful of distinct ones. Policy models are frozen: the set is never added to."""
    given = entity.__pydantic_fields_set__
    shared = field_sets.setdefault(frozenset(given), given)
    if shared is not given:
        object.__setattr__(entity, "__pydantic_fields_set__", shared)
    return entity


def validate_model(model_cls: type[M], value: Any, index: SourceIndex, out: list[Diagnostic]) -> M | None:
    """A whole document as one model (a `*_test.yaml` file), its errors appended to `out`."""
    validated: M | None = _validate_entity(model_cls, value, (), index, out)
    return validated


def _validate_entity(
    model_cls: type[BaseModel], value: Any, base: Path, index: SourceIndex, out: list[Diagnostic]
) -> Any:
    if value is None:
        value = {}
    try:
        return model_cls.model_validate(value)
    except ValidationError as exc:
        located = [(*_clean_loc(value, error["loc"]), error) for error in exc.errors(include_url=False)]
        reported: set[Path] = set()
        missing: dict[Path, list[str]] = {}
        for path, model_path, error in located:
            if path in reported or _explained_deeper(path, error, located):
                continue
            reported.add(path)
            if error["type"] == "missing" and path:
                missing.setdefault(path[:-1], []).append(str(path[-1]))
            else:
                out.append(_diagnostic(model_cls, base, path, model_path, error, index))
        out.extend(_missing(base, owner, fields, index) for owner, fields in missing.items())
        return None


def _missing(base: Path, owner: Path, fields: list[str], index: SourceIndex) -> Diagnostic:
    """One diagnostic for all the required fields a mapping lacks, at the key that names it."""
    where = ".".join(str(p) for p in owner)
    subject = f"{describe(base)} {where}" if where else describe(base)
    names = ", ".join(f"'{name}'" for name in fields)
    return Diagnostic.of(
        codes.MISSING_FIELD,
        f"{subject} is missing required field{'s' * (len(fields) > 1)} {names}",
        index.key(*base, *owner),
    )


def _explained_deeper(path: Path, error: Any, located: list[tuple[Path, list[str | int], Any]]) -> bool:
    """A union member's type error ("should be a string") when another member's error goes deeper."""
    return str(error["type"]).endswith("_type") and any(
        len(other) > len(path) and other[: len(path)] == path for other, _, _ in located
    )


def _clean_loc(value: Any, loc: tuple[Any, ...]) -> tuple[Path, list[str | int]]:
    """Drop the union-member tags pydantic puts in `loc`, keeping the path into the user's data."""
    path: list[str | int] = []
    current = value
    for part in loc:
        if isinstance(current, dict) and part in current:
            path.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif isinstance(current, dict) and isinstance(part, str) and not _is_tag(part):
            path.append(part)
            current = None
    return tuple(path), path


def _is_tag(part: str) -> bool:
    return part[:1].isupper() or part in {"str", "int", "decimal", "list", "dict", "bool", "float"} or "[" in part


def _diagnostic(
    model_cls: type[BaseModel],
    base: Path,
    path: Path,
    model_path: list[str | int],
    error: Any,
    index: SourceIndex,
) -> Diagnostic:
    kind = error["type"]
    full = (*base, *path)
    dotted = ".".join(str(p) for p in path)
    entity = describe(base)
    if kind == "extra_forbidden":
        allowed = _fields_at(model_cls, model_path[:-1])
        hint = suggest(str(path[-1]), allowed) if path else None
        if hint is None and allowed:
            hint = f"allowed here: {', '.join(sorted(allowed))}"
        return Diagnostic.of(codes.UNKNOWN_FIELD, f"{entity} has unknown field '{dotted}'", index.key(*full), hint=hint)
    subject = f"{entity} {dotted}" if dotted else entity
    msg: str = "Input should be a mapping of fields" if kind == "model_type" else error["msg"]
    message = f"{subject} {msg[6:]}" if msg.startswith("Input ") else f"{subject}: {msg[0].lower()}{msg[1:]}"
    shown = _show(error.get("input"))
    if shown is not None:
        message += f", found {shown}"
    return Diagnostic.of(codes.INVALID_VALUE, message, index.value(*full), hint=_choice_hint(error))


def _choice_hint(error: Any) -> str | None:
    """For a value outside a fixed set ('day', 'week', ...), the member closest to what was written."""
    expected = (error.get("ctx") or {}).get("expected")
    found = error.get("input")
    if error["type"] != "literal_error" or not isinstance(expected, str) or not isinstance(found, str):
        return None
    return suggest(found, re.findall(r"'([^']*)'", expected))


def _show(value: Any) -> str | None:
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    if value is None:
        return "nothing"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fields_at(model_cls: type[BaseModel], path: list[str | int]) -> set[str]:
    """Field names of the model reached by following path through fields, lists and dicts."""
    current: Any = model_cls
    for part in path:
        current = _step(current, part)
        if current is None:
            return set()
    models = [m for m in _candidates(current) if isinstance(m, type) and issubclass(m, BaseModel)]
    return {name for m in models for name in m.model_fields}


def _candidates(tp: Any) -> list[Any]:
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return [c for arg in get_args(tp) for c in _candidates(arg)]
    if origin is typing.Annotated:
        return _candidates(get_args(tp)[0])
    return [tp]


def _step(tp: Any, part: str | int) -> Any:
    for candidate in _candidates(tp):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel) and isinstance(part, str):
            info = candidate.model_fields.get(part)
            if info is not None:
                return info.annotation
        origin = get_origin(candidate)
        if origin is list and isinstance(part, int):
            return get_args(candidate)[0]
        if origin is dict and isinstance(part, str):
            return get_args(candidate)[1]
    return None
