"""The gateway message parser reads JSON exactly as json.loads does, by its faster route included."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from qqproto._payloads import _loads

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


def outcome(text: str) -> Any:
    try:
        return ("value", json.dumps(json.loads(text), sort_keys=True))
    except Exception as exc:  # the class of the failure must match too
        return ("error", type(exc))


def ours(text: str) -> Any:
    try:
        return ("value", json.dumps(_loads(text), sort_keys=True))
    except Exception as exc:
        return ("error", type(exc))


@settings(max_examples=500, deadline=None)
@given(values, st.sampled_from(["", " ", "\n", "\ufeff"]), st.sampled_from(["", " ", "x", "}", "\t"]))
def test_loads_agrees_with_json_loads_around_valid_json(value: Any, before: str, after: str) -> None:
    text = before + json.dumps(value, ensure_ascii=False) + after
    assert ours(text) == outcome(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet='{}[]":,0123456789.eE+-tfnrul \\x', max_size=30))
def test_loads_agrees_with_json_loads_on_any_text(text: str) -> None:
    assert ours(text) == outcome(text)
