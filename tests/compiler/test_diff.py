"""`policy diff`: a semantic diff of lowered tables, classed the way a reviewer weighs changes."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from compiler import compile_policy
from compiler.diff import NARROWS, NEUTRAL, RESILIENCE, SPEND, WIDENS, Change, Diff, diff_tables
from compiler.diff_render import render_json, render_markdown, render_text
from tests.conftest import ACME, FIXED_NOW, ROOT
from tests.support.cli import policy

NEW_KEY = """\
# yaml-language-server: $schema=../../../schemas/policy.schema.json
virtual_keys:
  vk-gina-codex:
    key_sha256: 5f2b1c0c1d0e6f9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f
    key_prefix: gp-Gina0000x
    principal: gina@acme.com
    team: engineering
    extends: codex-default
"""


def edit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1))


def artifact(root: Path) -> dict[str, object]:
    result = compile_policy(root, now=FIXED_NOW)
    assert result.artifact is not None, [f"{d.span} {d.message}" for d in result.errors]
    return result.artifact.model_dump()


@pytest.fixture
def team_on_azure(tmp_path: Path) -> Path:
    """acme with the whole Codex profile's gpt-4o pinned to the Azure deployment."""
    repo = tmp_path / "base"
    shutil.copytree(ACME, repo)
    edit(repo, "profiles.yaml", "model_aliases: {fast: gpt-5-mini}", "model_aliases: {fast: gpt-5-mini, gpt-4o: azure-east/gpt-4o}")
    return repo


def test_one_line_alias_edit_moves_the_whole_team(team_on_azure: Path, tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    head = tmp_path / "head"
    shutil.copytree(team_on_azure, head)
    edit(head, "profiles.yaml", "gpt-4o: azure-east/gpt-4o}", "gpt-4o: openai-primary/gpt-4o}")
    d = diff_tables(artifact(team_on_azure), artifact(head))
    moved = [c for c in d.changes if c.what.startswith("gpt-4o: azure-east -> openai-primary")]
    assert {c.subject for c in moved} == {
        "vk vk-alice-codex", "vk vk-bob-codex", "vk vk-carol-codex", "vk vk-cold-benchmark",
    }
    revoked = [(c.what, c.klass) for c in d.changes if c.subject == "vk vk-dave-codex"]
    assert len(revoked) == 1 and revoked[0][1] == "neutral"
    assert revoked[0][0].startswith("2 setting changes without effect while the key stays revoked: gpt-4o: azure-east")
    assert render_text(d) == snapshot(name="text")
    assert render_markdown(d) == snapshot(name="markdown")


def test_realistic_change_set_in_every_format(tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    head = tmp_path / "head"
    shutil.copytree(ACME, head)
    (head / "virtual_keys/engineering/gina.yaml").write_text(NEW_KEY)
    edit(head, "teams.yaml", "members: [alice@acme.com, bob@acme.com, carol@acme.com, dave@acme.com]",
         "members: [alice@acme.com, bob@acme.com, carol@acme.com, dave@acme.com, gina@acme.com]")
    edit(head, "virtual_keys/engineering/bob.yaml", "extends: codex-default", "extends: codex-default\n    status: revoked")
    edit(head, "budgets.yaml", "limit_usd: 100\n", "limit_usd: 150\n")
    edit(head, "budgets.yaml", "on_breach: {warn: 75%, block: 100%}", "on_breach: {warn: 90%, block: 120%}")
    edit(head, "profiles.yaml", "models_allowed: [gpt-5-mini, gpt-5, gpt-4o, claude-haiku-4-5-20251001]",
         "models_allowed: [gpt-5-mini, gpt-5, gpt-4o, o3, claude-haiku-4-5-20251001]")
    edit(head, "profiles.yaml", "on: [5xx, timeout, 429]", "on: [5xx]")
    edit(head, "profiles.yaml", "cache: {mode: respect, allow_override: true}", "cache: {mode: disable}")
    edit(head, "providers.yaml", "base_url: https://acme-east.openai.azure.com", "base_url: https://acme-east.example.net")
    d = diff_tables(artifact(ACME), artifact(head))
    counts = d.counts()
    assert all(counts[k] > 0 for k in counts), counts
    assert render_text(d) == snapshot(name="text")
    assert render_markdown(d) == snapshot(name="markdown")
    assert render_json(d) == snapshot(name="json")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_diff_between_git_revisions_leaves_the_working_tree_alone(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ACME, repo / "policies")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "add", ".")
    git(repo, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "base")
    git(repo, "checkout", "-q", "-b", "raise-budget")
    edit(repo / "policies", "budgets.yaml", "limit_usd: 100\n", "limit_usd: 150\n")
    git(repo, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qam", "raise the team budget")
    (repo / "policies" / "budgets.yaml").write_text("not: [valid")
    proc = policy("diff", "main", "HEAD", "--dir", "policies", "--format", "json", cwd=repo)
    assert proc.returncode == 3, proc.stderr
    data = json.loads(proc.stdout)
    assert data["summary"]["changes"] == 1 and data["summary"]["raises_spend"] == 1
    assert data["changes"][0]["subject"] == "budget eng-daily"
    assert (repo / "policies" / "budgets.yaml").read_text() == "not: [valid"
    assert policy("diff", "main", "main", "--dir", "policies", cwd=repo).returncode == 0
    assert policy("diff", "main", "no-such-branch", "--dir", "policies", cwd=repo).returncode == 2


def test_a_side_that_does_not_compile_exits_1(tmp_path: Path) -> None:
    head = tmp_path / "head"
    shutil.copytree(ACME, head)
    edit(head, "virtual_keys/engineering/bob.yaml", "extends: codex-default", "extends: codex-defualt")
    proc = policy("diff", str(ACME), str(head), cwd=ROOT)
    assert proc.returncode == 1 and "GP203" in proc.stderr


def changes_on(d: Diff, subject: str) -> list[tuple[str, str]]:
    return [(c.what, c.klass) for c in d.changes if c.subject == subject]


def edited(tmp_path: Path, *edits: tuple[str, str, str]) -> Diff:
    head = tmp_path / "head"
    shutil.copytree(ACME, head)
    for rel, old, new in edits:
        edit(head, rel, old, new)
    return diff_tables(artifact(ACME), artifact(head), "main", "HEAD")


def test_key_rotation_widens_access_on_the_key(tmp_path: Path) -> None:
    d = edited(tmp_path, (
        "virtual_keys/engineering/alice.yaml",
        "key_sha256: 1e91b63c54c691a0ac18b416ba1a8a52e5f4db250a70dfe9caf5880083c4dbfd\n    key_prefix: gp-nFv8tChoQ",
        "key_sha256: 0e91b63c54c691a0ac18b416ba1a8a52e5f4db250a70dfe9caf5880083c4dbfd\n    key_prefix: gp-NEWROTATE",
    ))
    assert changes_on(d, "vk vk-alice-codex") == [
        ("key rotated (gp-nFv8tChoQ… -> gp-NEWROTATE…): the old key stops working, whoever holds the new one gets in",
         WIDENS),
    ]
    assert len(d.changes) == 1


def test_gateway_settings_are_compared(tmp_path: Path) -> None:
    d = edited(tmp_path,
               ("gateway.yaml", "client_deadline_s: 600", "client_deadline_s: 120"),
               ("gateway.yaml", "max_body_bytes: 16777216", "max_body_bytes: 1048576"),
               ("gateway.yaml", "header_prefix: X-LangWatch-", "header_prefix: X-Gatepost-"))
    assert changes_on(d, "gateway") == [
        ("header_prefix: X-LangWatch- -> X-Gatepost- (clients reading the old response headers stop seeing them)",
         NEUTRAL),
        ("client deadline: 600s -> 120s", RESILIENCE),
        ("max_body_bytes: 16,777,216 -> 1,048,576 (larger requests are refused)", NARROWS),
    ]


def test_a_smaller_upstream_answer_limit_weakens_resilience(tmp_path: Path) -> None:
    d = edited(tmp_path, ("gateway.yaml", "max_body_bytes: 16777216",
                          "max_body_bytes: 16777216\n  max_answer_bytes: 1048576\n  max_event_bytes: 67108864"))
    assert changes_on(d, "gateway") == [
        ("max_answer_bytes: 33,554,432 -> 1,048,576 (larger answers now fail)", RESILIENCE),
        ("max_event_bytes: 16,777,216 -> 67,108,864", NEUTRAL),
    ]


def test_lowering_a_client_bound_narrows_or_weakens_resilience_and_raising_one_is_neutral(tmp_path: Path) -> None:
    d = edited(tmp_path / "defaults", ("gateway.yaml", "max_body_bytes: 16777216", "max_body_bytes: 16777216\n"
                          "  header_timeout_s: 10\n  body_timeout_s: 60\n  max_connections: 4000\n  max_in_flight: 1000"))
    assert changes_on(d, "gateway") == []
    d = edited(tmp_path / "changed", ("gateway.yaml", "max_body_bytes: 16777216", "max_body_bytes: 16777216\n"
                          "  header_timeout_s: 2\n  idle_timeout_s: 5\n  max_headers: 50\n  max_in_flight: 200\n"
                          "  max_connections: 10000"))
    assert changes_on(d, "gateway") == [
        ("header timeout: 10s -> 2s (slower clients are cut off)", NARROWS),
        ("idle timeout: 120s -> 5s (clients reconnect more often)", RESILIENCE),
        ("max_headers: 100 -> 50 (requests with more headers are refused)", NARROWS),
        ("max_connections: 4,000 -> 10,000", NEUTRAL),
        ("max_in_flight: 1,000 -> 200 (fewer requests are served at once)", RESILIENCE),
    ]


def test_a_provider_moved_to_another_host_widens_access(tmp_path: Path) -> None:
    d = edited(tmp_path, ("providers.yaml", "base_url: https://acme-east.openai.azure.com",
                          "base_url: https://acme-east.example.net"))
    assert changes_on(d, "provider azure-east") == [
        ("base_url: https://acme-east.openai.azure.com -> https://acme-east.example.net (every prompt routed here, "
         "and the provider credential, now go to this host)", WIDENS)]


def test_a_provider_circuit_and_deployment_read_as_sentences(tmp_path: Path) -> None:
    d = edited(tmp_path, ("providers.yaml", "gpt-4o: gpt4o-prod\n", "gpt-4o: gpt4o-prod-v2\n"),
               ("providers.yaml", "timeouts: {connect_s: 5, read_s: 60, total_s: 120}",
                "timeouts: {connect_s: 5, read_s: 60, total_s: 120}\n    circuit: {failures: 3, cooldown_s: 60}"))
    assert changes_on(d, "provider azure-east") == [
        ("deployments: gpt-4o as gpt4o-prod -> gpt4o-prod-v2", NEUTRAL),
        ("cool-down: after 5 failures for 30s -> after 3 failures for 60s", NEUTRAL),
    ]
    assert all(c.subject == "provider azure-east" for c in d.changes)


def test_alias_moved_to_a_pricier_model_raises_spend_and_names_no_unchanged_provider(tmp_path: Path) -> None:
    d = edited(tmp_path, ("profiles.yaml", "model_aliases: {fast: gpt-5-mini}", "model_aliases: {fast: gpt-5}"))
    alice = changes_on(d, "vk vk-alice-codex")
    assert alice == [("fast now means gpt-5 (was gpt-5-mini; input+output per 1M tokens $2.25 -> $11.25)", SPEND),
                     ("fast: first target openai-primary/gpt-5-mini -> openai-primary/gpt-5", NEUTRAL)]
    assert not any("openai-primary -> openai-primary" in c.what for c in d.changes)


def test_alias_moved_to_a_cheaper_model_is_neutral(tmp_path: Path) -> None:
    pricier = tmp_path / "pricier"
    shutil.copytree(ACME, pricier)
    edit(pricier, "profiles.yaml", "model_aliases: {fast: gpt-5-mini}", "model_aliases: {fast: gpt-5}")
    d = diff_tables(artifact(pricier), artifact(ACME))
    assert changes_on(d, "vk vk-alice-codex")[0] == (
        "fast now means gpt-5-mini (was gpt-5; input+output per 1M tokens $11.25 -> $2.25)", NEUTRAL)
    assert d.counts()[SPEND] == 0


def test_block_threshold_lowered_narrows_and_raised_raises_spend(tmp_path: Path) -> None:
    lowered = edited(tmp_path / "lowered", ("budgets.yaml", "on_breach: {warn: 90%, block: 110%}",
                                            "on_breach: {warn: 90%, block: 100%}"))
    assert changes_on(lowered, "budget org-monthly") == [("block threshold 110% -> 100%", NARROWS)]
    raised = edited(tmp_path / "raised", ("budgets.yaml", "on_breach: {warn: 90%, block: 110%}",
                                          "on_breach: {warn: 90%, block: 150%}"))
    assert changes_on(raised, "budget org-monthly") == [("block threshold 110% -> 150%", SPEND)]


HOP = "{provider: anthropic-fallback, model: claude-haiku-4-5-20251001}"


def test_a_hop_moved_to_a_dearer_model_the_key_may_not_call_widens_access_and_raises_spend(tmp_path: Path) -> None:
    d = edited(tmp_path, ("profiles.yaml", HOP, "{provider: anthropic-fallback, model: claude-sonnet-4-5-20250929}"))
    bob = changes_on(d, "vk vk-bob-codex")
    gpt5 = [change for change in bob if change[0].startswith("gpt-5 fallback")]
    assert gpt5 == [
        ("gpt-5 fallback: openai-primary/gpt-5 -> anthropic-fallback/claude-haiku-4-5-20251001  =>  "
         "openai-primary/gpt-5 -> anthropic-fallback/claude-sonnet-4-5-20250929 (now reaches "
         "anthropic-fallback/claude-sonnet-4-5-20250929, a model this key may not call by name)", WIDENS),
        ("gpt-5 fallback now costs more: claude-sonnet-4-5-20250929 instead of claude-haiku-4-5-20251001, "
         "input+output per 1M tokens $6.00 -> $18.00", SPEND),
    ]
    assert [klass for _, klass in bob] == [WIDENS, SPEND] * 5


def test_a_hop_added_on_another_provider_widens_access(tmp_path: Path) -> None:
    d = edited(tmp_path, ("profiles.yaml", f"chain: [openai-primary, {HOP}]", f"chain: [openai-primary, azure-east, {HOP}]"))
    assert changes_on(d, "vk vk-bob-codex") == [
        ("gpt-4o fallback: openai-primary/gpt-4o -> anthropic-fallback/claude-haiku-4-5-20251001  =>  "
         "openai-primary/gpt-4o -> azure-east/gpt-4o -> anthropic-fallback/claude-haiku-4-5-20251001 "
         "(now sends prompts to azure-east)", WIDENS)]


def test_a_hop_moved_to_a_cheaper_model_the_key_may_call_raises_neither(tmp_path: Path) -> None:
    d = edited(tmp_path, ("profiles.yaml", HOP, "{provider: openai-primary, model: gpt-5-mini}"))
    gpt5 = [change for change in changes_on(d, "vk vk-bob-codex") if change[0].startswith("gpt-5 fallback")]
    assert gpt5 == [("gpt-5 fallback: openai-primary/gpt-5 -> anthropic-fallback/claude-haiku-4-5-20251001  =>  "
                     "openai-primary/gpt-5 -> openai-primary/gpt-5-mini", RESILIENCE)]


def test_a_shorter_window_with_the_same_limit_raises_spend(tmp_path: Path) -> None:
    d = edited(tmp_path, ("budgets.yaml", "window: month\n    limit_usd: 300", "window: day\n    limit_usd: 300"))
    assert changes_on(d, "budget per-engineer/alice@acme.com") == [
        ("limit $300.00 per month -> $300.00 per day (at most, in a month: $300.00 -> $9,131.25)", SPEND)]


def test_a_total_window_caps_what_a_periodic_one_left_open(tmp_path: Path) -> None:
    d = edited(tmp_path, ("budgets.yaml", "window: day\n    timezone: Europe/Amsterdam", "window: total\n    timezone: Europe/Amsterdam"))
    assert changes_on(d, "budget eng-daily") == [
        ("limit $100.00 per day -> $100.00 in total (at most, over all time: no cap -> $100.00)", NARROWS)]
    reopened = diff_tables(artifact(tmp_path / "head"), artifact(ACME))
    assert changes_on(reopened, "budget eng-daily") == [
        ("limit $100.00 in total -> $100.00 per day (at most, over all time: $100.00 -> no cap)", SPEND)]


def test_window_and_limit_changed_together_are_compared_over_each_period(tmp_path: Path) -> None:
    cheaper = edited(tmp_path / "cheaper", ("budgets.yaml", "window: week\n    timezone: America/New_York\n    limit_usd: 250",
                                            "window: day\n    timezone: America/New_York\n    limit_usd: 20"))
    assert changes_on(cheaper, "budget ds-weekly") == [
        ("limit $250.00 per week -> $20.00 per day (at most, in a day: $250.00 -> $20.00; "
         "in a week: $250.00 -> $140.00)", NARROWS)]
    burstier = edited(tmp_path / "burstier", ("budgets.yaml", "window: week\n    timezone: America/New_York\n    limit_usd: 250",
                                              "window: month\n    timezone: America/New_York\n    limit_usd: 900"))
    assert changes_on(burstier, "budget ds-weekly") == [
        ("limit $250.00 per week -> $900.00 per month (at most, in a week: $250.00 -> $900.00; "
         "in a month: $1,087.05 -> $900.00)", SPEND)]


def test_budget_scope_and_target_are_compared(tmp_path: Path) -> None:
    d = edited(tmp_path, ("budgets.yaml", "scope: vk\n    target: vk-cold-benchmark",
                          "scope: principal\n    target: alice@acme.com"))
    assert ("applies to vk vk-cold-benchmark -> principal alice@acme.com", NEUTRAL) in changes_on(
        d, "budget cold-benchmark-weekly")


def test_changes_on_a_revoked_key_do_not_count_as_widening(tmp_path: Path) -> None:
    d = edited(tmp_path, ("virtual_keys/engineering/bob.yaml", "extends: codex-default",
                          "extends: codex-default\n    status: revoked"),
               ("profiles.yaml", "models_allowed: [gpt-5-mini, gpt-5, gpt-4o, claude-haiku-4-5-20251001]",
                "models_allowed: [gpt-5-mini, gpt-5, gpt-4o, o3, claude-haiku-4-5-20251001]"))
    bob = changes_on(d, "vk vk-bob-codex")
    assert bob == [("status: active -> revoked", NARROWS),
                   ("1 setting change without effect while the key is revoked: may now call: o3", NEUTRAL)]
    assert ("may now call: o3", WIDENS) in changes_on(d, "vk vk-alice-codex")


def table_pair() -> tuple[dict[str, object], dict[str, object]]:
    base = artifact(ACME)
    return base, copy.deepcopy(base)


def test_price_added_removed_and_target_upstream_compared() -> None:
    base, head = table_pair()
    table = head["table"]
    assert isinstance(table, dict)
    removed = table["models"]["o3"]["price"]
    table["models"]["o3"]["price"] = None
    route = table["route_sets"][table["virtual_keys"]["vk-alice-codex"]["routes"]]["gpt-5"]
    route["targets"][0]["upstream_model"] = "gpt-5-2025-08-07"
    head["revision"] = "sha256:" + "0" * 64
    d = diff_tables(base, head)
    assert changes_on(d, "model o3") == [
        ("price removed (was input $2.00, output $8.00 per 1M tokens); no budget can count its spend", NEUTRAL)]
    assert changes_on(d, "vk vk-alice-codex") == [
        ("gpt-5 via openai-primary/gpt-5 is sent upstream as gpt-5-2025-08-07 (was gpt-5)", NEUTRAL)]
    assert changes_on(diff_tables(head, base), "model o3") == [
        ("price set: input $2.00, output $8.00 per 1M tokens", NEUTRAL)]
    assert removed is not None


def test_a_revision_change_the_diff_cannot_describe_is_never_no_change() -> None:
    base, head = table_pair()
    head["revision"] = "sha256:" + "f" * 64
    d = diff_tables(base, head)
    assert d.changes == [] and d.undescribed and d.changed
    assert "does not describe" in render_text(d) and "as before" not in render_text(d)
    assert render_json(d)["summary"]["undescribed_revision_change"] is True
    same = diff_tables(base, base)
    assert not same.changed and "decides every request as before" in render_text(same)


def test_header_names_both_sides(tmp_path: Path) -> None:
    d = edited(tmp_path, ("budgets.yaml", "limit_usd: 100\n", "limit_usd: 150\n"))
    assert render_text(d).startswith(f"Policy diff main ({d.base_revision[:19]}) -> HEAD ({d.head_revision[:19]})")
    assert f"`main` (`{d.base_revision[:19]}`) → `HEAD` (`{d.head_revision[:19]}`)" in render_markdown(d)
    assert render_json(d)["base"] == "main"


def test_markdown_is_cut_short_under_githubs_comment_limit() -> None:
    d = Diff("sha256:" + "a" * 64, "sha256:" + "b" * 64, "main", "HEAD")
    for i in range(3000):
        d.changes += [Change(f"vk vk-{i:05}", "+", "may now call: " + ", ".join(f"model-{j}" for j in range(8)), WIDENS)]
    text = render_markdown(d)
    assert len(text) < 60_000
    assert "**3000 changes: 3000 widens access" in text
    assert "Cut short:" in text and "--format json" in text
    assert "vk vk-00000" in text and "vk vk-02999" not in text
    small = render_markdown(Diff(d.base_revision, d.head_revision, changes=d.changes[:3]))
    assert "Cut short" not in small


def test_an_artifact_side_is_verified_before_it_is_compared(tmp_path: Path) -> None:
    built = tmp_path / "table.json"
    assert policy("compile", str(ACME), "-o", str(built), cwd=ROOT).returncode == 0
    bogus = tmp_path / "bogus.json"
    bogus.write_text(json.dumps({"hello": "world"}))
    proc = policy("diff", str(bogus), str(built), cwd=ROOT)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "not a routing table" in proc.stderr and "bogus.json" in proc.stderr
    tampered = json.loads(built.read_text())
    tampered["table"]["budgets"]["eng-daily"]["limit_micros"] *= 10
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    proc = policy("diff", str(built), str(tmp_path / "tampered.json"), cwd=ROOT)
    assert proc.returncode == 1 and "does not match its content" in proc.stderr
    (tmp_path / "garbage.json").write_text("{not json")
    proc = policy("diff", str(tmp_path / "garbage.json"), str(built), cwd=ROOT)
    assert proc.returncode == 2 and "not JSON" in proc.stderr and "Traceback" not in proc.stderr
    proc = policy("diff", str(tmp_path / "missing.json"), str(built), cwd=tmp_path)
    assert proc.returncode == 2 and "is not a policy directory, an artifact file, or a git revision" in proc.stderr
    proc = policy("diff", str(built), str(ACME), cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_limit_under_a_cent_is_shown_to_its_precision(tmp_path: Path) -> None:
    d = edited(tmp_path, ("budgets.yaml", "window: day\n    timezone: Europe/Amsterdam\n    limit_usd: 100",
                          "window: day\n    timezone: Europe/Amsterdam\n    limit_usd: 0.0015"))
    [(line, _)] = changes_on(d, "budget eng-daily")
    assert line.startswith("limit $100.00 -> $0.0015")


def limits_diff(tmp_path: Path, base_limits: str, head_limits: str) -> Diff:
    """acme with `rate_limits.yaml` holding `base_limits` on one side and `head_limits` on the other."""
    sides = []
    for name, text in (("base", base_limits), ("head", head_limits)):
        repo = tmp_path / name
        shutil.copytree(ACME, repo)
        if text:
            (repo / "rate_limits.yaml").write_text(text)
        sides.append(artifact(repo))
    return diff_tables(sides[0], sides[1], "main", "HEAD")


PER_ENGINEER = "rate_limits:\n  per-engineer: {scope: principal, target: bob@acme.com, %s}\n"


def test_adding_a_rate_limit_narrows_and_removing_one_widens(tmp_path: Path) -> None:
    added = limits_diff(tmp_path / "added", "", PER_ENGINEER % "requests: 60/minute, in_flight: 8")
    assert changes_on(added, "rate limit per-engineer") == [
        ("60 requests per minute, 8 in flight on principal bob@acme.com", NARROWS)]
    assert [c.klass for c in added.changes if c.what.startswith("now under rate limit")] == [NARROWS]
    removed = limits_diff(tmp_path / "removed", PER_ENGINEER % "requests: 60/minute", "")
    assert changes_on(removed, "rate limit per-engineer") == [("removed (was 60 requests per minute)", WIDENS)]
    assert [c.klass for c in removed.changes if c.what.startswith("no longer under rate limit")] == [WIDENS]


def test_raising_a_rate_limit_widens_and_lowering_one_narrows(tmp_path: Path) -> None:
    raised = limits_diff(tmp_path / "raised", PER_ENGINEER % "requests: 60/minute, tokens: 1000/second, in_flight: 8",
                         PER_ENGINEER % "requests: 120/minute, in_flight: 16")
    assert changes_on(raised, "rate limit per-engineer") == [
        ("requests: 60/minute -> 120/minute", WIDENS), ("tokens: 1,000/second -> no limit", WIDENS),
        ("in flight: 8 -> 16", WIDENS)]
    lowered = limits_diff(tmp_path / "lowered", PER_ENGINEER % "requests: 60/minute, in_flight: 8",
                          PER_ENGINEER % "requests: 1/second, tokens: 5000/hour, in_flight: 4")
    assert changes_on(lowered, "rate limit per-engineer") == [
        ("requests: 60/minute -> 1/second", NARROWS), ("tokens: no limit -> 5,000/hour", NARROWS),
        ("in flight: 8 -> 4", NARROWS)]


def test_a_rate_limit_over_fewer_models_widens_and_over_more_narrows(tmp_path: Path) -> None:
    fewer = limits_diff(tmp_path / "fewer", PER_ENGINEER % "requests: 60/minute",
                        PER_ENGINEER % "requests: 60/minute, models: [gpt-4o]")
    assert changes_on(fewer, "rate limit per-engineer") == [("models: every model -> gpt-4o", WIDENS)]
    more = limits_diff(tmp_path / "more", PER_ENGINEER % "requests: 60/minute, models: [gpt-4o]",
                       PER_ENGINEER % "requests: 60/minute, models: [gpt-4o, gpt-5]")
    assert changes_on(more, "rate limit per-engineer") == [("models: gpt-4o -> gpt-4o, gpt-5", NARROWS)]


def test_a_rate_limit_moved_to_another_target_is_told_on_the_limit_and_on_each_key(tmp_path: Path) -> None:
    d = limits_diff(tmp_path, PER_ENGINEER % "requests: 60/minute",
                    "rate_limits:\n  per-engineer: {scope: principal, target: alice@acme.com, requests: 60/minute}\n")
    assert changes_on(d, "rate limit per-engineer") == [
        ("applies to principal bob@acme.com -> principal alice@acme.com", NEUTRAL)]
    klasses = {c.klass for c in d.changes if "under rate limit" in c.what}
    assert klasses == {NARROWS, WIDENS}


def test_a_provider_turned_chat_only_narrows_what_responses_clients_reach(tmp_path: Path) -> None:
    d = edited(tmp_path, ("providers.yaml", "  openai-primary:\n    type: openai\n    api_key: env:OPENAI_API_KEY\n",
                          "  openai-primary:\n    type: openai_compatible\n    base_url: http://gpu-box:8000/v1\n"))
    assert changes_on(d, "provider openai-primary") == [
        ("base_url: (default) -> http://gpu-box:8000/v1 (every prompt routed here, and the provider credential, "
         "now go to this host)", WIDENS),
        ("type: openai -> openai_compatible (Chat Completions only: Responses, Messages and Gemini requests are "
         "translated to it, and those using what Chat Completions cannot carry are refused)", NARROWS),
        ("api_key: env:OPENAI_API_KEY -> (none)", NEUTRAL),
    ]


def test_api_keys_changes_name_each_credential_and_a_new_host_widens_access(tmp_path: Path) -> None:
    base = tmp_path / "base"
    shutil.copytree(ACME, base)
    edit(base, "providers.yaml", "    api_key: env:OPENAI_API_KEY\n",
         "    api_keys:\n      - {id: team-a, api_key: env:OPENAI_KEY_A, weight: 2}\n      - env:OPENAI_KEY_B\n")
    reweighted = tmp_path / "reweighted"
    shutil.copytree(base, reweighted)
    edit(reweighted, "providers.yaml", "weight: 2}\n      - env:OPENAI_KEY_B\n",
         "weight: 1}\n      - env:OPENAI_KEY_B\n      - env:OPENAI_KEY_C\n")
    [change] = [c for c in diff_tables(artifact(base), artifact(reweighted)).changes if "api_keys" in c.what]
    assert (change.subject, change.klass) == ("provider openai-primary", NEUTRAL)
    assert change.what == "api_keys: + openai-primary#3 (env:OPENAI_KEY_C, weight 1); team-a weight 2 -> 1"
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(base, elsewhere)
    edit(elsewhere, "providers.yaml", "      - env:OPENAI_KEY_B\n",
         "      - {api_key: env:OPENAI_KEY_B, base_url: https://llm-proxy.example.com/v1}\n")
    [moved] = [c for c in diff_tables(artifact(base), artifact(elsewhere)).changes if "api_keys" in c.what]
    assert moved.klass == WIDENS and "base_url (default) -> https://llm-proxy.example.com/v1" in moved.what
    [dropped] = [c for c in diff_tables(artifact(reweighted), artifact(base)).changes if "api_keys" in c.what]
    assert dropped.klass == RESILIENCE and "- openai-primary#3" in dropped.what


def test_moving_a_cloud_provider_to_another_region_widens_access(tmp_path: Path) -> None:
    def policy(region: str, secret: str) -> str:
        return f"""\
providers:
  bedrock: {{type: bedrock, region: {region}, aws_access_key_id: env:AWS_KEY_ID, aws_secret_access_key: {secret},
            model_ids: {{claude-haiku-4-5: us.anthropic.claude-haiku-4-5-20251001-v1:0}}}}
models:
  claude-haiku-4-5: {{providers: [bedrock], price: {{input: 1, output: 5}}}}
virtual_keys:
  vk-a: {{key_sha256: {"a" * 64}, models_allowed: [claude-haiku-4-5]}}
"""

    for name, region, secret in (("base", "us-east-1", "env:AWS_SECRET"), ("head", "eu-west-1", "file:/run/aws")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "policy.yaml").write_text(policy(region, secret))
    d = diff_tables(artifact(tmp_path / "base"), artifact(tmp_path / "head"))
    changes = {(c.what, c.klass) for c in d.changes if c.subject == "provider bedrock"}
    assert changes == {
        ("region: us-east-1 -> eu-west-1 (every prompt routed here now goes to this cloud region or project)", WIDENS),
        ("aws_secret_access_key: env:AWS_SECRET -> file:/run/aws", NEUTRAL),
    }


TELEMETRY = "max_body_bytes: 16777216\n  telemetry: {endpoint: 'http://otel-collector:4318', sampling_ratio: 0.25%s}"


def test_traces_turned_on_are_neutral_and_prompt_text_sent_to_a_collector_widens_access(tmp_path: Path) -> None:
    d = edited(tmp_path / "on", ("gateway.yaml", "max_body_bytes: 16777216", TELEMETRY % ""))
    assert changes_on(d, "gateway") == [
        ("telemetry: traces sent to http://otel-collector:4318, sampling 25%", NEUTRAL)]
    d = edited(tmp_path / "content", ("gateway.yaml", "max_body_bytes: 16777216", TELEMETRY % ", record_content: true"))
    assert changes_on(d, "gateway") == [
        ("telemetry: traces sent to http://otel-collector:4318 with prompt and answer text, sampling 25%", WIDENS)]


def test_a_telemetry_change_names_each_setting(tmp_path: Path) -> None:
    base = tmp_path / "base"
    shutil.copytree(ACME, base)
    edit(base, "gateway.yaml", "max_body_bytes: 16777216", TELEMETRY % "")
    head = tmp_path / "head"
    shutil.copytree(base, head)
    edit(head, "gateway.yaml", "sampling_ratio: 0.25", "sampling_ratio: 1, record_content: true")
    d = diff_tables(artifact(base), artifact(head), "main", "HEAD")
    assert changes_on(d, "gateway") == [
        ("telemetry: sampling_ratio: 25% -> 100%; record_content: false -> true (prompt and answer text now reach "
         "this collector)", WIDENS)]
    d = diff_tables(artifact(head), artifact(ACME), "HEAD", "main")
    assert changes_on(d, "gateway") == [
        ("telemetry: traces are no longer sent (were sent to http://otel-collector:4318)", NEUTRAL)]
