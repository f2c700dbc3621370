"""The gateway message parser reads JSON exactly as json.loads does, by whichever faster route it takes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qqproto import _payloads
from qqproto._payloads import BadPayload, Message, loads, loads_stdlib, parse_payload

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
# Inputs where json and orjson part ways, or where either could slip.
EDGES = [
    "NaN",
    "-Infinity",
    "[Infinity]",
    "1e400",
    "-1e400",
    "123456789012345678901234567890",
    str(2**64),
    str(-(2**63) - 1),
    '"\\ud800"',
    '"\\udc00x"',
    '"\\ud83d\\ude00"',
    '{"a":1,"a":2}',
    '{"a":1,"b":2,"a":3}',
    "-0",
    "-0.0",
    "0.1e-400",
    "1.7976931348623157e308",
    "5e-324",
    "[" * 2000 + "]" * 2000,
    "[" * 600 + "]" * 600,
    '"\x00"',
    '"\t"',
    "\ufeff{}",
    "{} ",
    " {}",
    "[1,]",
    '{"a":1,}',
    "01",
    "1.",
    ".5",
    '"\\x"',
    "tru",
    "nul",
    "",
    "[]",
    "{}",
    '{"op":0}',
]
EDGE_BYTES = [
    b"\xff",
    b'"\xc3\x28"',
    b'"\xed\xa0\x80"',
    b'{"t":"\xe4\xbd\xa0\xe5\xa5\xbd"}',
    b"\xef\xbb\xbf{}",
    b'"\xf4\x90\x80\x80"',
]


@pytest.fixture(params=["fast", "json"], autouse=True)
def route(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every test runs on the installed fast route and again on json alone."""
    if request.param == "json":
        monkeypatch.setattr(_payloads, "fast_loads", loads_stdlib)
    yield str(request.param)


def outcome(message: Message) -> Any:
    try:
        text = message.decode("utf-8") if isinstance(message, bytes) else message
        return ("value", json.dumps(json.loads(text), sort_keys=True))
    except Exception as exc:  # the class of the failure must match too
        return ("error", type(exc))


def ours(message: Message) -> Any:
    try:
        return ("value", json.dumps(loads(message), sort_keys=True))
    except Exception as exc:
        return ("error", type(exc))


@settings(max_examples=300, deadline=None)
@given(values, st.sampled_from(["", " ", "\n", "\ufeff"]), st.sampled_from(["", " ", "x", "}", "\t"]), st.booleans())
def test_loads_agrees_with_json_loads_around_valid_json(value: Any, before: str, after: str, as_bytes: bool) -> None:
    text = before + json.dumps(value, ensure_ascii=False) + after
    message: Message = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert ours(message) == outcome(message)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='{}[]":,0123456789.eE+-tfnrul \\xNaIiy', max_size=30), st.booleans())
def test_loads_agrees_with_json_loads_on_any_text(text: str, as_bytes: bool) -> None:
    message: Message = text.encode() if as_bytes else text
    assert ours(message) == outcome(message)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_loads_agrees_with_json_loads_on_any_bytes(data: bytes) -> None:
    assert ours(data) == outcome(data)


@pytest.mark.parametrize("text", EDGES, ids=range(len(EDGES)))
def test_loads_agrees_with_json_loads_where_parsers_differ(text: str) -> None:
    assert ours(text) == outcome(text)
    assert ours(text.encode("utf-8", "surrogatepass")) == outcome(text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("data", EDGE_BYTES, ids=range(len(EDGE_BYTES)))
def test_loads_agrees_with_json_loads_on_doubtful_utf8(data: bytes) -> None:
    assert ours(data) == outcome(data)


def test_a_message_that_is_not_utf8_is_refused_as_such() -> None:
    with pytest.raises(BadPayload, match="not UTF-8"):
        parse_payload(b'{"op":0,"d":"\xff"}')


def test_bytes_and_text_give_the_same_payload() -> None:
    text = '{"op":0,"s":3,"t":"C2C_MESSAGE_CREATE","id":"e1","d":{"content":"你好 😀"}}'
    assert parse_payload(text.encode()) == parse_payload(text)
