"""GP312/GP314 point at the setting that makes routes cross protocols, once, however many keys
and routes inherit it."""

from __future__ import annotations

from compiler import compile_sources
from policy.loader import discover, read_source
from tests.conftest import ACME, FIXED_NOW


def test_a_profile_fallback_hop_is_reported_once_with_what_it_affects() -> None:
    files = [read_source(ACME, path) for path in discover(ACME)]
    files = [
        f if f.path != "profiles.yaml" else
        type(f)(f.path, f.text.replace("cache: {mode: force}", "cache: {mode: respect}", 1), f.sha256)
        for f in files
    ]
    result = compile_sources(files, now=FIXED_NOW)
    [warning] = [d for d in result.diagnostics if d.code == "GP312"]
    assert str(warning.span) == "profiles.yaml:10:31"
    assert warning.message.startswith(
        "21 routes of 5 virtual keys (e.g. route 'fast' of virtual key 'vk-alice-codex') "
        "reach anthropic targets from openai ones through this fallback hop")
