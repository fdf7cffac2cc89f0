"""Credential references read per credential: a missing one is reported by provider and, among
several, by id, never with a value; the others serve."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from runtime.credentials import changed_providers, missing_reports, resolve_credentials, usable_credentials
from runtime.table import Credential, Provider, Timeouts


def provider(pid: str, *references: str, pooled: bool = True) -> Provider:
    base = Provider(pid, "openai", "openai", None, None, None, MappingProxyType({}), Timeouts(1, 1, 1), 5, 30)
    if not pooled:
        return replace(base, api_key=references[0], credentials=(Credential(pid, pid, references[0], 1, base),))
    credentials = tuple(Credential(pid, f"{pid}#{n}", ref, 1, base) for n, ref in enumerate(references, start=1))
    return replace(base, credentials=credentials, pooled=True)


def test_a_missing_reference_among_several_is_named_by_its_credential_and_the_others_serve() -> None:
    providers = {"pool": provider("pool", "env:KEY_1", "env:KEY_2"), "single": provider("single", "env:GONE", pooled=False)}
    environ = {"KEY_1": "value-of-the-first-key"}
    found, problems = resolve_credentials(providers, environ)
    assert found == {("pool", "pool#1"): "value-of-the-first-key"}
    assert [c.id for c in usable_credentials(providers["pool"], found)] == ["pool#1"]
    assert usable_credentials(providers["single"], found) == ()
    assert missing_reports(providers, problems) == [
        {"provider": "pool", "credential": "pool#2", "problem": "env:KEY_2: environment variable KEY_2 is not set"},
        {"provider": "single", "problem": "env:GONE: environment variable GONE is not set"},
    ]


def test_a_rotation_names_the_providers_whose_credentials_changed() -> None:
    before = {("pool", "pool#1"): "a", ("pool", "pool#2"): "b", ("other", "other"): "c"}
    assert changed_providers(before, {**before, ("pool", "pool#2"): "b2"}) == ["pool"]
    assert changed_providers(before, {k: v for k, v in before.items() if k[0] != "other"}) == ["other"]
    assert changed_providers(before, dict(before)) == []
