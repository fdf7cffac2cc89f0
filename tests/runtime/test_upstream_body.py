"""The body sent upstream is the client's bytes with only the top-level `model` changed, whenever
nothing else about the request changed; otherwise it is the rewritten payload."""

from __future__ import annotations

import json
import os
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.upstream.base import Outbound, RawBody
from runtime.upstream.body import with_model, without_model


def outbound(raw: bytes) -> Outbound:
    payload = orjson.loads(raw)
    return Outbound("chat", payload, False, {}, raw=RawBody(raw, payload))


TRICKY = json.dumps({
    "messages": [{"role": "user", "content": "héllo, {\"model\": \"o3\"} and a \\ backslash"}],
    "tools": [{"type": "function", "function": {"parameters": {"properties": {"model": {"type": "string"}}}}}],
    "model": "fast",
    "temperature": 1.0,
    "max_tokens": 1e3,
    "metadata": {"model": "not this one"},
    "prompt_cache_key": "repo-42",
}, indent=2).encode()


def test_an_unchanged_model_sends_the_clients_bytes_untouched() -> None:
    out = outbound(TRICKY.replace(b'"fast"', b'"gpt-4o"'))
    assert with_model(out, "gpt-4o") is out.raw.data  # type: ignore[union-attr]


def test_a_new_model_is_spliced_into_the_top_level_key_only() -> None:
    sent = with_model(outbound(TRICKY), "gpt-4o-2024-08-06")
    assert sent == TRICKY.replace(b'"model": "fast"', b'"model": "gpt-4o-2024-08-06"')
    assert orjson.loads(sent)["metadata"] == {"model": "not this one"}


def test_the_model_is_cut_out_leaving_valid_json_around_it() -> None:
    assert without_model(outbound(b'{"model": "a"}')) == b"{}"
    assert without_model(outbound(b'{ "x": 1 , "model" : "a" }')) == b'{ "x": 1  }'
    assert without_model(outbound(b'{"model":"a" ,"x":1.50}')) == b'{"x":1.50}'
    assert orjson.loads(without_model(outbound(TRICKY))) == {k: v for k, v in json.loads(TRICKY).items() if k != "model"}


def test_a_key_that_only_looks_like_model_is_left_alone() -> None:
    raw = b'{"say \\"model": "x", "model": "fast"}'
    assert with_model(outbound(raw), "o3") == b'{"say \\"model": "x", "model": "o3"}'


def test_a_replaced_payload_is_serialised_afresh() -> None:
    out = outbound(TRICKY)
    rewritten = Outbound("chat", {**out.payload, "stream_options": {"include_usage": True}}, False, {}, raw=out.raw)
    assert orjson.loads(with_model(rewritten, "o3")) == {**rewritten.payload, "model": "o3"}


def test_a_duplicated_top_level_model_is_serialised_afresh() -> None:
    sent = with_model(outbound(b'{"model": "a", "x": 1, "model": "b"}'), "o3")
    assert orjson.loads(sent) == {"model": "o3", "x": 1}


scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=12), st.sampled_from(["model", '"model":', "{[", "\\", "]}"]))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["model", "a", "b\"", "model\\"]), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    members=st.dictionaries(st.text(max_size=6).filter(lambda k: k != "model"), values, max_size=5),
    position=st.integers(0, 5),
    old=st.text(max_size=10),
    new=st.text(max_size=10),
    indent=st.sampled_from([None, 0, 2]),
    ensure_ascii=st.booleans(),
)
def test_splicing_changes_nothing_but_the_model(
    members: dict[str, Any], position: int, old: str, new: str, indent: int | None, ensure_ascii: bool
) -> None:
    items = list(members.items())
    items.insert(min(position, len(items)), ("model", old))
    raw = json.dumps(dict(items), indent=indent, ensure_ascii=ensure_ascii).encode()
    sent = with_model(outbound(raw), new)
    assert orjson.loads(sent) == {**dict(items), "model": new}
    same_start = len(os.path.commonprefix([raw, sent]))  # noqa: RUF071 - bytes, compared byte by byte
    same_end = len(os.path.commonprefix([raw[same_start:][::-1], sent[same_start:][::-1]]))  # noqa: RUF071 - bytes
    old_value, new_value = json.dumps(old, ensure_ascii=ensure_ascii).encode(), orjson.dumps(new)
    assert len(raw) - same_start - same_end <= len(old_value)
    assert len(sent) - same_start - same_end <= len(new_value)
