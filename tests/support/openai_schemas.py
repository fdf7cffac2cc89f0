"""OpenAI's published schemas for what the gateway writes on the OpenAI surfaces, and the
validators tests check answers and stream events with.

`tests/fixtures/openai-openapi-schemas.json` holds the components of OpenAI's OpenAPI document
(github.com/openai/openai-openapi, `openapi.json`) that a chat completion, its stream chunk, a
Response, every Responses stream event and an error answer refer to, with the document's version
and commit. Regenerate it with `python -m tests.support.openai_schemas <openapi.json> <commit>`.
Extracting drops descriptions and examples, and turns OpenAPI's `nullable: true` into JSON
Schema's `null` type; nothing else is changed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

VENDORED = Path(__file__).resolve().parent.parent / "fixtures" / "openai-openapi-schemas.json"
SOURCE = "https://github.com/openai/openai-openapi/blob/{commit}/openapi.json"
ROOTS = ("CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "Response", "ResponseStreamEvent",
         "ErrorResponse")
PREFIX = "#/components/schemas/"
DROPPED = frozenset({"description", "example", "examples", "x-oaiMeta", "x-oaiExpandable", "x-oaiTypeLabel", "title"})


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.removeprefix(PREFIX)
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _clean(node: Any, names: bool = False) -> Any:
    """`names`: `node` maps property names to schemas (its keys are names, not keywords)."""
    if isinstance(node, list):
        return [_clean(v) for v in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {k: _clean(v) for k, v in node.items()}
    out = {k: _clean(v, k in ("properties", "patternProperties", "$defs")) for k, v in node.items()
           if k not in DROPPED and k != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def extract(document: dict[str, Any], commit: str) -> dict[str, Any]:
    schemas = document["components"]["schemas"]
    needed: set[str] = set()
    pending = list(ROOTS)
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending.extend(_refs(schemas[name]))
    return {
        "source": SOURCE.format(commit=commit), "version": document["info"]["version"], "commit": commit,
        "components": {"schemas": {name: _clean(schemas[name]) for name in sorted(needed)}},
    }


@cache
def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(VENDORED.read_text())
    return loaded


def validator(name: str) -> Draft202012Validator:
    """A validator for the component `name` (one of ROOTS, or any component they refer to)."""
    document = _document()
    return Draft202012Validator({"components": document["components"], "$ref": PREFIX + name})


@cache
def _stream_events() -> dict[str, str]:
    schemas = _document()["components"]["schemas"]
    found: dict[str, str] = {}
    for ref in schemas["ResponseStreamEvent"]["anyOf"]:
        name = ref["$ref"].removeprefix(PREFIX)
        for kind in schemas[name]["properties"]["type"].get("enum", []):
            found[kind] = name
    return found


def stream_event(kind: str) -> str:
    """The component of the Responses stream event of type `kind` (ResponseStreamEvent's member)."""
    return _stream_events()[kind]


def problems(name: str, instance: Any) -> list[str]:
    """Where `instance` breaks the schema of `name`: empty when it conforms."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
            for e in validator(name).iter_errors(instance)]


if __name__ == "__main__":
    source, commit = sys.argv[1], sys.argv[2]
    VENDORED.write_text(json.dumps(extract(json.loads(Path(source).read_text()), commit), indent=1, sort_keys=True) + "\n")
