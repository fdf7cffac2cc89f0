"""GP312/GP314 point at the setting that makes routes cross protocols, once, however many keys
and routes inherit it."""

from __future__ import annotations

from pathlib import Path

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


def test_a_gemini_fallback_behind_an_openai_route_compiles_with_the_cache_warning(tmp_path: Path) -> None:
    """Every pair of protocols is translated now (GP314 is retired): such a route compiles, with
    GP312 under `cache: respect` as for any crossing."""
    (tmp_path / "policy.yaml").write_text("""\
providers:
  openai-primary: {type: openai, api_key: env:OPENAI_API_KEY}
  gemini-main: {type: gemini, api_key: env:GEMINI_API_KEY}
models:
  gpt-5-mini: {providers: [openai-primary], price: {input: 0.25, output: 2}}
  gemini-2.5-flash: {providers: [gemini-main], price: {input: 0.3, output: 2.5}}
virtual_keys:
  vk-data:
    key_sha256: ff3ddc419d3d84c5600464890d951952e45e536e323f295992cbd9fa66371038
    models_allowed: [gpt-5-mini, gemini-2.5-flash]
    fallback:
      on: [5xx]
      chain: [{provider: gemini-main, model: gemini-2.5-flash}]
""")
    result = compile_sources([read_source(tmp_path, path) for path in discover(tmp_path)], now=FIXED_NOW)
    assert [(d.code, str(d.span)) for d in result.diagnostics] == [("GP312", "policy.yaml:13:15")]
    assert "reaches gemini targets from openai ones through this fallback hop" in result.diagnostics[0].message
    assert not result.failed(strict=False)
