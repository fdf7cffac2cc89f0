"""YAML aliases cannot grow a file past its own length plus ALIAS_ALLOWANCE values: a "billion
laughs" file is refused at the alias whose expansion crossed the bound, in compile and reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.errors import PolicyError
from cli.sources import load_source
from compiler import compile_policy
from policy.loader import ALIAS_ALLOWANCE

BASE = """\
providers:
  mock: {type: mock}
models:
  gpt-4o: {providers: [mock], price: {input: 2.50, output: 10.00}}
virtual_keys:
  vk-demo:
    key_sha256: ad2bac2e8e3158a68bda0b891445ca8b55964004de7ab3430a69257381e24d25
    models_allowed: [gpt-4o]
"""

LAUGHS = """\
teams:
  t:
    members: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
x0: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
x1: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
x2: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
x3: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
x4: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
x5: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
x6: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
x7: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""

BLOCK_LAUGHS = """\
profiles:
  p:
    description: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]
    models_allowed: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
    model_aliases:
      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
      d: &d
        - *c
        - *c
        - *c
        - *c
        - *c
        - *c
        - *c
        - *c
        - *c
        - *c
      e:
        - {more: *d}
        - {more: *d}
        - {more: *d}
        - {more: *d}
        - {more: *d}
        - {more: *d}
        - {more: *d}
        - {more: *d}
        - {more: *d}
        - {more: *d}
"""


def repo(tmp_path: Path, text: str) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "policy.yaml").write_text(BASE)
    (root / "laughs.yaml").write_text(text)
    return root


@pytest.mark.parametrize(("text", "alias_at"), [(LAUGHS, "laughs.yaml:8:9"), (BLOCK_LAUGHS, "laughs.yaml:26:18")])
def test_a_billion_laughs_is_refused_at_its_alias(tmp_path: Path, text: str, alias_at: str) -> None:
    result = compile_policy(repo(tmp_path, text))
    assert [(d.code, str(d.span)) for d in result.errors] == [("GP007", alias_at)]
    assert "YAML aliases expand this file" in result.errors[0].message


def test_a_reload_refuses_it_the_same_way(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as refused:
        load_source(repo(tmp_path, LAUGHS))
    assert "laughs.yaml:8:9: error[GP007]" in refused.value.report


def test_aliases_that_share_a_list_stay_allowed(tmp_path: Path) -> None:
    keys = "".join(
        f"  vk-{i}:\n    key_sha256: \"{i:064x}\"\n    models_allowed: *models\n" for i in range(1, 200)
    )
    text = f"profiles:\n  shared:\n    models_allowed: &models [gpt-4o]\nvirtual_keys:\n{keys}"
    root = repo(tmp_path, text)
    result = compile_policy(root)
    assert not result.errors, [str(d) for d in result.errors]
    assert ALIAS_ALLOWANCE >= 100_000
