"""Whatever the input, the compiler answers with located diagnostics, never a traceback."""

from __future__ import annotations

import hashlib
import io
import random
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import main
from compiler import compile_sources, render_github, render_json, render_text
from policy.loader import SourceFile
from tests.conftest import ACME, FIXED_NOW

SETTINGS = settings(
    max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


def source(path: str, text: str) -> SourceFile:
    return SourceFile(path, text, hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest())


def assert_located(files: list[SourceFile]) -> None:
    result = compile_sources(files, now=FIXED_NOW)
    lines = {f.path: max(1, len(f.text.splitlines()) + 1) for f in files}
    for d in result.diagnostics:
        if d.code == "GP006":
            continue
        assert d.span is not None, d
        assert d.span.file in lines, d
        assert 1 <= d.span.line <= lines[d.span.file] and d.span.col >= 1, d
    render_text(result.diagnostics, result.sources)
    render_json(result.diagnostics)
    render_github(result.diagnostics)
    if result.errors:
        assert result.artifact is None
    else:
        assert result.artifact is not None


@SETTINGS
@given(st.text(max_size=400))
def test_arbitrary_text_never_crashes(text: str) -> None:
    assert_located([source("policy.yaml", text)])


FIELDS = [
    "type", "api_key", "base_url", "api_version", "deployments", "providers", "price", "input", "output",
    "cached_input", "models_allowed", "model_aliases", "fallback", "on", "chain", "retries", "cache", "mode",
    "extends", "team", "principal", "key_sha256", "key_prefix", "status", "expires_at", "scope", "target",
    "window", "timezone", "limit_usd", "on_breach", "warn", "block", "members", "defaults", "modles_allowed",
    "provider", "model", "timeouts", "total_s",
]
IDS = ["openai-primary", "anthropic-fallback", "gpt-4o", "gpt-5*", "engineering", "codex-default", "vk-a", "*"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True), st.sampled_from(IDS),
    st.sampled_from(["80%", "abc%", "5xx", "400", "env:KEY", "azure-east/gpt-4o", "UTC", "Mars/Base", "day",
                     "2027-02-30", "respect", "sk-" + "x" * 20, "0" * 64, ""]),
    st.text(max_size=12), st.dates(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS + IDS), st.text(max_size=6)), inner, max_size=5),
    ),
    max_leaves=25,
)
SECTION_NAMES = ["gateway", "providers", "models", "teams", "profiles", "virtual_keys", "budgets", "modles"]
DOCUMENTS = st.dictionaries(
    st.sampled_from(SECTION_NAMES),
    st.one_of(VALUES, st.dictionaries(st.sampled_from(IDS), st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6), max_size=4)),
    max_size=6,
)


@SETTINGS
@given(st.lists(DOCUMENTS, min_size=1, max_size=3))
def test_plausible_but_wrong_policies_never_crash(documents: list[dict[str, object]]) -> None:
    files = [source(f"part{i}.yaml", yaml.safe_dump(doc, allow_unicode=True)) for i, doc in enumerate(documents)]
    assert_located(files)


def acme_sources() -> list[SourceFile]:
    return [source(p.relative_to(ACME).as_posix(), p.read_text()) for p in sorted(ACME.rglob("*.yaml"))]


MUTATIONS = (
    "delete", "duplicate", "swap", "indent", "dedent", "retype", "merge_key", "truncate", "tab", "document",
    "rename_id", "unquote",
)


def mutate(text: str, rng: random.Random, kind: str) -> str:
    lines = text.splitlines()
    if not lines:
        return text
    i = rng.randrange(len(lines))
    j = rng.randrange(len(lines))
    if kind == "delete":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "indent":
        lines[i] = "  " + lines[i]
    elif kind == "dedent":
        lines[i] = lines[i][2:]
    elif kind == "retype":
        key, sep, _ = lines[i].partition(":")
        lines[i] = key + sep + " " + rng.choice(["[1, 2]", "{a: b}", "3.14159", "true", "~", "'x'", "2026-01-01"])
    elif kind == "merge_key":
        lines.insert(i, lines[i][: len(lines[i]) - len(lines[i].lstrip())] + "<<: *anchor")
    elif kind == "truncate":
        return text[: rng.randrange(len(text))]
    elif kind == "tab":
        lines[i] = "\t" + lines[i]
    elif kind == "document":
        lines.insert(i, "---")
    elif kind == "rename_id":
        lines[i] = lines[i].replace("vk-", "vk_").replace("codex-default", "codex-defualt")
    elif kind == "unquote":
        lines[i] = lines[i].replace('"', "")
    return "\n".join(lines) + "\n"


@SETTINGS
@given(st.randoms(use_true_random=False), st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=4))
def test_mutated_example_repo_never_crashes(rng: random.Random, kinds: list[str]) -> None:
    files = acme_sources()
    for kind in kinds:
        k = rng.randrange(len(files))
        files[k] = source(files[k].path, mutate(files[k].text, rng, kind))
    assert_located(files)


def test_cli_exits_1_not_a_traceback_on_generated_broken_repos(tmp_path: Path) -> None:
    rng = random.Random(7)
    for n in range(12):
        repo = tmp_path / f"repo{n}"
        for f in acme_sources():
            text = f.text
            for kind in rng.sample(MUTATIONS, 3):
                text = mutate(text, rng, kind)
            target = repo / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["compile", str(repo), "--check"])
        assert code in (0, 1), err.getvalue()
        assert "Traceback" not in err.getvalue()
