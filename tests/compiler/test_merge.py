"""Merge pass: every file's sections into one policy, an id defined once in the whole repository,
and a source index that points at what was kept."""

from __future__ import annotations

from compiler.diagnostics import Diagnostic
from compiler.index import SourceIndex
from compiler.merge import RawPolicy, merge
from compiler.naming import describe
from policy.loader import SourceFile, parse


def merged(*files: tuple[str, str]) -> tuple[RawPolicy, list[Diagnostic], SourceIndex]:
    index = SourceIndex()
    raw, diagnostics = merge([parse(SourceFile(path, text, "0" * 64)) for path, text in files], index)
    return raw, diagnostics, index


def located(diagnostics: list[Diagnostic]) -> list[tuple[str, str]]:
    return [(d.code, str(d.span)) for d in diagnostics]


def test_sections_of_every_file_merge_into_one_policy() -> None:
    raw, diagnostics, index = merged(
        ("providers.yaml", "providers:\n  openai: {type: openai}\n"),
        ("vks/alice.yaml", "virtual_keys:\n  vk-alice: {team: eng}\n"),
        ("vks/bob.yaml", "virtual_keys:\n  vk-bob: {team: eng}\n"),
    )
    assert diagnostics == []
    assert raw.sections["providers"] == {"openai": {"type": "openai"}}
    assert raw.sections["virtual_keys"] == {"vk-alice": {"team": "eng"}, "vk-bob": {"team": "eng"}}
    assert str(index.key("virtual_keys", "vk-bob")) == "vks/bob.yaml:2:3"
    assert sorted(index.files) == ["providers.yaml", "vks/alice.yaml", "vks/bob.yaml"]


def test_an_id_defined_in_two_files_is_reported_at_the_second_naming_the_first() -> None:
    raw, diagnostics, _ = merged(
        ("vks/alice.yaml", "virtual_keys:\n  vk-alice: {team: eng}\n"),
        ("vks/bob.yaml", "virtual_keys:\n  vk-bob: {team: eng}\n  vk-alice: {team: sales}\n"),
    )
    [duplicate] = diagnostics
    assert (duplicate.code, str(duplicate.span)) == ("GP105", "vks/bob.yaml:3:3")
    assert duplicate.message == "virtual key 'vk-alice' is defined more than once"
    assert [(str(r.span), r.message) for r in duplicate.related] == [("vks/alice.yaml:2:3", "first defined here")]
    assert raw.sections["virtual_keys"]["vk-alice"] == {"team": "eng"}, "the first definition is kept"


def test_the_same_id_in_two_sections_is_two_entities() -> None:
    raw, diagnostics, _ = merged(("a.yaml", "teams:\n  platform: {}\nprofiles:\n  platform: {}\n"))
    assert diagnostics == []
    assert "platform" in raw.sections["teams"] and "platform" in raw.sections["profiles"]


def test_the_index_of_a_dropped_duplicate_keeps_pointing_at_the_first_definition() -> None:
    _, _, index = merged(
        ("a.yaml", "models:\n  gpt-4o:\n    providers: [openai]\n"),
        ("b.yaml", "\n\nmodels:\n  gpt-4o:\n    providers: [azure]\n  o3:\n    providers: [openai]\n"),
    )
    assert str(index.value("models", "gpt-4o", "providers")) == "a.yaml:3:16"
    assert str(index.value("models", "o3", "providers")) == "b.yaml:7:16", "the rest of the file is indexed"


def test_a_second_gateway_section_is_a_duplicate_and_the_first_is_kept() -> None:
    raw, diagnostics, _ = merged(
        ("gateway.yaml", "gateway: {header_prefix: X-Acme-}\n"),
        ("more.yaml", "gateway: {header_prefix: X-Other-}\n"),
    )
    assert located(diagnostics) == [("GP105", "more.yaml:1:1")]
    assert diagnostics[0].message == "section 'gateway' is defined more than once"
    assert raw.gateway == {"header_prefix": "X-Acme-"}


def test_an_unknown_section_is_reported_with_the_section_it_resembles() -> None:
    raw, diagnostics, index = merged(("vks.yaml", "virtual-keys:\n  vk-alice: {team: eng}\n"))
    [unknown] = diagnostics
    assert (unknown.code, str(unknown.span)) == ("GP101", "vks.yaml:1:1")
    assert unknown.hint is not None and "virtual_keys" in unknown.hint
    assert raw.sections["virtual_keys"] == {}
    assert index.value("virtual-keys", "vk-alice") is None, "nothing of a dropped section is indexed"


def test_a_file_or_section_that_is_not_a_mapping_is_reported_and_skipped() -> None:
    raw, diagnostics, _ = merged(
        ("list.yaml", "- providers\n"),
        ("vks.yaml", "virtual_keys:\n  - vk-alice\n"),
        ("teams.yaml", "teams:\n  eng: {}\n"),
    )
    assert located(diagnostics) == [("GP004", "list.yaml:1:1"), ("GP004", "vks.yaml:2:3")]
    assert raw.sections["virtual_keys"] == {} and raw.sections["teams"] == {"eng": {}}


def test_empty_files_and_empty_sections_contribute_nothing() -> None:
    raw, diagnostics, index = merged(("empty.yaml", ""), ("comments.yaml", "# later\n"), ("teams.yaml", "teams:\n"))
    assert diagnostics == [] and raw.gateway is None
    assert all(section == {} for section in raw.sections.values())
    assert sorted(index.files) == ["comments.yaml", "empty.yaml", "teams.yaml"]


def test_messages_name_an_entity_by_its_section_in_the_singular() -> None:
    assert describe(("virtual_keys", "vk-alice", "models_allowed", 0)) == "virtual key 'vk-alice'"
    assert describe(("budgets", "eng-daily")) == "budget 'eng-daily'"
    assert describe(("gateway", "circuit")) == "section 'gateway'"
