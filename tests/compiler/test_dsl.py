"""The DSL (`*.gp`): the same language in another syntax, mixable with YAML, located diagnostics."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from syrupy.assertion import SnapshotAssertion

from artifact import canonical_json
from compiler import compile_policy, compile_sources, render_text
from policy.dsl.parser import MAX_NESTING
from policy.loader import SourceFile
from tests.conftest import ACME, EXAMPLES, FIXED_NOW

ACME_DSL = EXAMPLES / "acme-dsl"


def compiled(root: Path) -> dict[str, object]:
    result = compile_policy(root, now=FIXED_NOW)
    assert result.artifact is not None, [f"{d.span} {d.message}" for d in result.errors]
    return dict(result.artifact)


SOURCE_FIELDS = {"sources", "source_map"}


def test_acme_in_the_dsl_compiles_to_the_same_artifact_but_its_source_fields() -> None:
    """Every field matches except `sources` and `source_map`, which name the .gp files and their lines."""
    yaml_artifact, dsl_artifact = compiled(ACME), compiled(ACME_DSL)
    assert dsl_artifact["revision"] == yaml_artifact["revision"]
    assert canonical_json(dsl_artifact["table"]) == canonical_json(yaml_artifact["table"])
    assert set(dsl_artifact) == set(yaml_artifact) and SOURCE_FIELDS <= set(yaml_artifact)
    for name in sorted(set(yaml_artifact) - SOURCE_FIELDS):
        assert canonical_json(dsl_artifact[name]) == canonical_json(yaml_artifact[name]), name
    assert dsl_artifact["source_map"].keys() == yaml_artifact["source_map"].keys()  # type: ignore[attr-defined]


def test_a_mixed_repository_works(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(ACME, mixed)
    for rel in ("profiles", "budgets", "virtual_keys/engineering/alice"):
        (mixed / f"{rel}.yaml").unlink()
        shutil.copyfile(ACME_DSL / f"{rel}.gp", mixed / f"{rel}.gp")
    assert compiled(mixed)["revision"] == compiled(ACME)["revision"]


def test_api_keys_in_the_dsl_lower_as_in_yaml() -> None:
    vk = "virtual_keys:\n  vk-a: {key_sha256: %s, models_allowed: [gpt-4o]}\n" % ("a" * 64)
    registry = "models:\n  gpt-4o: {providers: [pool]}\n" + vk
    yaml = compile_sources([source("p.yaml", """\
providers:
  pool:
    type: openai
    api_keys: [env:KEY_1, {id: "team-b#2", api_key: env:KEY_2, weight: 3}]
""" + registry)], now=FIXED_NOW)
    dsl = compile_sources([
        source("p.gp", 'provider pool {\n  type = openai\n'
               '  api_keys = [env:KEY_1, {id: "team-b#2", api_key: env:KEY_2, weight: 3}]  # two keys\n}\n'),
        source("r.yaml", registry),
    ], now=FIXED_NOW)
    assert yaml.artifact is not None and dsl.artifact is not None, [d.message for d in [*yaml.errors, *dsl.errors]]
    assert dsl.artifact.revision == yaml.artifact.revision
    assert [(c.id, c.weight) for c in dsl.artifact.table.providers["pool"].api_keys or []] == [
        ("pool#1", 1), ("team-b#2", 3)]


def source(path: str, text: str) -> SourceFile:
    return SourceFile(path, text, hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest())


def test_dsl_diagnostics_are_located_with_a_caret() -> None:
    text = (ACME_DSL / "virtual_keys/engineering/bob.gp").read_text().replace("extends = codex-default", "extends = codex-defualt")
    files = [source(p.relative_to(ACME_DSL).as_posix(), p.read_text()) for p in sorted(ACME_DSL.rglob("*.gp"))
             if not p.name == "bob.gp"] + [source("virtual_keys/engineering/bob.gp", text)]
    result = compile_sources(files, now=FIXED_NOW)
    [error] = result.errors
    line = text.splitlines().index("  extends = codex-defualt") + 1
    assert (error.code, str(error.span)) == ("GP203", f"virtual_keys/engineering/bob.gp:{line}:13")
    rendered = render_text(result.errors, result.sources)
    assert "did you mean 'codex-default'?" in rendered and "^^^^^^^^^^^^^" in rendered


def test_syntax_errors_say_what_was_expected() -> None:
    result = compile_sources([source("p.gp", "provider openai-primary {\n  type openai\n}\n")], now=FIXED_NOW)
    [error] = result.errors
    assert (error.code, str(error.span)) == ("GP002", "p.gp:2:8")
    assert "unexpected 'openai'; expected" in error.message and "'='" in error.message
    missing = compile_sources([source("p.gp", "model gpt-4o {\n  providers = [openai-primary\n")], now=FIXED_NOW)
    assert missing.errors[0].code == "GP002" and "'[' opened at 2:15 is never closed" in missing.errors[0].message


BROKEN_DSL = {
    "unterminated-string": 'provider openai-primary {\n  type = openai\n  api_key = "env:OPENAI_API_KEY\n}\n',
    "unclosed-block": "provider openai-primary {\n  type = openai\n  api_key = env:OPENAI_API_KEY\n",
    "unclosed-list": "model gpt-4o {\n  providers = [openai-primary\n",
    "block-runs-into-next-entity": "provider a { type = mock; x = {a: 1 }\nmodel b { providers = [a] }\n",
    "stray-character": "provider a {\n  type = mock !\n}\n",
    "unknown-kind": "providr a {\n  type = mock\n}\n",
}


def syntax_error(text: str) -> tuple[str, str, str]:
    result = compile_sources([source("p.gp", text)], now=FIXED_NOW)
    [error] = result.errors
    return error.code, str(error.span), render_text(result.errors, result.sources)


def test_dsl_syntax_errors_read_as_sentences(snapshot: SnapshotAssertion) -> None:
    rendered = {name: syntax_error(text)[2] for name, text in BROKEN_DSL.items()}
    assert rendered == snapshot


def test_a_lexer_error_names_what_was_expected() -> None:
    code, span, text = syntax_error(BROKEN_DSL["stray-character"])
    assert (code, span) == ("GP002", "p.gp:2:15")
    assert "unexpected character '!'; expected" in text and "'}'" in text and "a new line" in text


def test_an_unterminated_string_says_so() -> None:
    code, span, text = syntax_error(BROKEN_DSL["unterminated-string"])
    assert (code, span) == ("GP002", "p.gp:3:13") and "unterminated string" in text


def test_a_missing_brace_points_at_the_one_left_open() -> None:
    assert syntax_error(BROKEN_DSL["unclosed-block"])[:2] == ("GP002", "p.gp:1:25")
    assert "'{' opened at 1:25 is never closed" in syntax_error(BROKEN_DSL["unclosed-block"])[2]
    assert "'[' opened at 2:15 is never closed" in syntax_error(BROKEN_DSL["unclosed-list"])[2]
    assert "the '{' opened at 1:12 is not closed before this model" in syntax_error(
        BROKEN_DSL["block-runs-into-next-entity"])[2]


def test_deep_nesting_is_a_located_syntax_error_not_a_recursion_error() -> None:
    deep = "profile p {\n  models_allowed = " + "[" * 2000 + "]" * 2000 + "\n}\n"
    result = compile_sources([source("p.gp", deep)], now=FIXED_NOW)
    [error] = result.errors
    assert (error.code, str(error.span)) == ("GP002", f"p.gp:2:{20 + MAX_NESTING - 1}")
    assert f"nest at most {MAX_NESTING} deep" in error.message
    nested_in_strings = 'profile p {\n  description = "' + "[" * 2000 + '" # ' + "{" * 2000 + "\n}\n"
    assert not [d for d in compile_sources([source("p.gp", nested_in_strings)], now=FIXED_NOW).diagnostics
                if d.code == "GP002"]


def test_an_unknown_kind_suggests_the_closest() -> None:
    assert "did you mean 'provider'?" in syntax_error(BROKEN_DSL["unknown-kind"])[2]


def test_the_same_id_in_yaml_and_dsl_names_both_places() -> None:
    files = [
        source("a.yaml", "providers:\n  mock: {type: mock}\n"),
        source("b.gp", "provider mock { type = mock }\n"),
    ]
    result = compile_sources(files, now=FIXED_NOW)
    duplicate = next(d for d in result.errors if d.code == "GP105")
    assert str(duplicate.span) == "b.gp:1:10" and str(duplicate.related[0].span) == "a.yaml:2:3"


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(st.sampled_from([*list('{}[]=:;,\n "#abc-_0123456789.%*/@'), "provider ", "model ", "budget ", "virtual_key ", "gateway ", "team ", "profile ", "type = mock", "\\"]), max_size=80))
def test_random_dsl_never_crashes_the_compiler(pieces: list[str]) -> None:
    text = "".join(pieces)
    result = compile_sources([source("fuzz.gp", text)], now=FIXED_NOW)
    for d in result.diagnostics:
        if d.code != "GP006":
            assert d.span is not None and d.span.line >= 1 and d.span.col >= 1, d
    render_text(result.diagnostics, result.sources)
