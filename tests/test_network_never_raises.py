"""Random bytes and random payloads from the network never raise out of the core."""

from __future__ import annotations

import json
from typing import Any

from helpers import Harness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qqproto import Fatal, State

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "op": st.sampled_from([0, 1, 2, 6, 7, 9, 10, 11, 12, 13, 99, -1, "0", None]),
        "s": st.one_of(st.integers(-5, 50), st.text(max_size=3), st.none()),
        "t": st.one_of(st.sampled_from(["READY", "RESUMED", "C2C_MESSAGE_CREATE"]), st.integers(), st.none()),
        "d": json_values,
        "id": json_values,
    },
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def alive_or_fatal(h: Harness) -> None:
    assert h.conn.state in (State.FATAL, State.CLOSED) or h.conn.next_timer() is not None


@SETTINGS
@given(st.lists(envelopes, min_size=1, max_size=6), st.booleans())
def test_random_gateway_payloads_never_raise(payloads: list[dict[str, Any]], connected: bool) -> None:
    h = Harness()
    h.auto_ready = connected
    h.start()
    for payload in payloads:
        live = [p for p in h.ws_peers() if p.sock_id not in h.closed and p.accepted]
        if not live:
            break
        h.send(live[-1].sock_id, payload)
    alive_or_fatal(h)
    h.advance(120)
    alive_or_fatal(h)


@SETTINGS
@given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=8), st.sampled_from([0, 1, 2]))
def test_random_bytes_on_any_socket_never_raise(chunks: list[bytes], which: int) -> None:
    h = Harness()
    if which < 2:
        h.answer_http = which == 1
    if which == 1:
        h.accept_upgrade = False
    h.start()
    target = h.opens[-1].sock_id
    for chunk in chunks:
        h.deliver(target, chunk)
    alive_or_fatal(h)
    assert not any(isinstance(a, Fatal) for a in h.notices)


@SETTINGS
@given(json_values)
def test_random_json_from_the_token_endpoint_never_raises(body: Any) -> None:
    h = Harness()
    h.token_answers = [(200, json.dumps(body).encode())]
    h.start()
    alive_or_fatal(h)
