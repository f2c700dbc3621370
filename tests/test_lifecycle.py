"""The whole way to a session: token, /gateway/bot, WebSocket, Hello, Identify or Resume, READY."""

from __future__ import annotations

import dataclasses
import json

import pytest
from helpers import CONFIG, GATEWAY_URL, SECRET, TOKEN, Harness

from qqproto import (
    CloseSocket,
    Dispatch,
    OpenSocket,
    Ready,
    Resumed,
    SendData,
    State,
)


def test_nothing_happens_before_start() -> None:
    h = Harness()
    assert h.conn.next_actions() == []
    assert h.conn.next_timer() is None
    assert h.conn.state is State.IDLE


def test_lifecycle_token_then_gateway_bot_then_websocket_identify_ready() -> None:
    h = Harness().connect()

    token_request, gateway_request = h.http_requests
    assert token_request.method == "POST"
    assert token_request.target == "/app/getAppAccessToken"
    assert token_request.host == "bots.qq.com"
    assert json.loads(token_request.body) == {"appId": "102000000", "clientSecret": SECRET}
    assert gateway_request.method == "GET"
    assert gateway_request.target == "/gateway/bot"
    assert gateway_request.host == "api.sgroup.qq.com"
    assert gateway_request.headers["authorization"] == f"QQBot {TOKEN}"

    opens = h.opens
    assert [(o.host, o.port, o.tls, o.server_hostname) for o in opens] == [
        ("bots.qq.com", 443, True, "bots.qq.com"),
        ("api.sgroup.qq.com", 443, True, "api.sgroup.qq.com"),
        ("gw.example.test", 443, True, "gw.example.test"),
    ]
    # Each HTTP socket is closed once its answer is in.
    assert opens[0].sock_id in h.closed and opens[1].sock_id in h.closed

    (identify,) = h.sent_ops(2)
    assert identify["d"]["token"] == f"QQBot {TOKEN}"
    assert identify["d"]["intents"] == int(CONFIG.intents)
    assert identify["d"]["shard"] == [0, 1]
    (ready,) = h.of_type(Ready)
    assert ready.session_id == "session-1"
    assert ready.user["id"] == "42"
    assert ready.shard == (0, 1)
    assert h.conn.session_id == "session-1"
    assert h.conn.last_seq == 1


def test_websocket_upgrade_targets_the_path_of_the_gateway_url() -> None:
    h = Harness()
    h.gateway_default = (200, {"url": "wss://gw.example.test:8443/ws/path?compress=0"})
    h.start()
    ws_open = h.opens[-1]
    assert (ws_open.host, ws_open.port) == ("gw.example.test", 8443)
    handshake = next(a for a in h.log if isinstance(a, SendData) and a.sock_id == ws_open.sock_id)
    assert handshake.data.startswith(b"GET /ws/path?compress=0 HTTP/1.1\r\n")
    assert b"host: gw.example.test:8443" in handshake.data.lower()


def test_dispatches_reach_the_application_in_order_with_event_ids() -> None:
    h = Harness().connect()
    seqs = [h.dispatch("C2C_MESSAGE_CREATE", {"id": f"m{i}", "content": "hi"}) for i in range(5)]
    dispatches = h.of_type(Dispatch)
    assert [d.seq for d in dispatches] == seqs
    assert dispatches[0].event_type == "C2C_MESSAGE_CREATE"
    assert dispatches[0].data == {"id": "m0", "content": "hi"}
    assert dispatches[0].event_id == f"ev-{seqs[0]}"


def test_dispatches_are_ordinary_frozen_dataclasses() -> None:
    h = Harness().connect()
    seq = h.dispatch("C2C_MESSAGE_CREATE", {"id": "m0"})
    (event,) = h.of_type(Dispatch)
    assert event == Dispatch("C2C_MESSAGE_CREATE", {"id": "m0"}, seq, f"ev-{seq}")
    assert repr(event) == repr(Dispatch("C2C_MESSAGE_CREATE", {"id": "m0"}, seq, f"ev-{seq}"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.seq = 0  # type: ignore[misc]


def test_resume_when_a_session_is_held_and_identify_otherwise() -> None:
    h = Harness().connect()
    h.dispatch()
    h.dispatch()
    h.server_close(4009)
    assert len(h.sent_ops(2)) == 1
    (resume,) = h.sent_ops(6)
    assert resume["d"] == {"token": f"QQBot {TOKEN}", "session_id": "session-1", "seq": 3}
    assert h.of_type(Resumed) == [Resumed("session-1")]
    assert h.conn.state is State.CONNECTED


def test_replayed_dispatches_reach_the_application_exactly_once() -> None:
    h = Harness().connect()
    h.dispatch(seq=2)
    h.dispatch(seq=3)
    h.auto_ready = False
    h.server_close(4009)
    ws = h.ws_id()
    # The platform replays from an older seq than the client holds, then sends what it missed.
    for seq in (2, 3, 4, 5):
        h.send(ws, {"op": 0, "s": seq, "t": "GROUP_AT_MESSAGE_CREATE", "d": {"id": f"m{seq}"}, "id": f"e{seq}"})
    h.send(ws, {"op": 0, "s": 5, "t": "RESUMED", "d": ""})
    h.dispatch(seq=6)
    h.dispatch(seq=4)  # a stray duplicate after the resume
    assert [d.seq for d in h.of_type(Dispatch)] == [2, 3, 4, 5, 6]
    assert h.of_type(Resumed) == [Resumed("session-1")]


def test_close_sends_1000_waits_for_the_answer_and_stops() -> None:
    h = Harness().connect()
    ws = h.ws_id()
    h.conn.close(h.now)
    h.pump()
    assert h.conn.state is State.CLOSED
    assert h.peers[ws].close_code == 1000  # type: ignore[union-attr]
    assert ws in h.closed
    assert h.conn.next_timer() is None
    h.advance(3600)
    assert not any(isinstance(a, OpenSocket) for a in h.log[-5:])


def test_close_gives_up_waiting_for_the_close_answer_after_close_timeout() -> None:
    h = Harness().connect()
    ws = h.ws_id()
    h.conn.close(h.now)
    # The pump would complete the handshake; take the close frame without answering it.
    actions = h.conn.next_actions()
    assert any(isinstance(a, SendData) and a.sock_id == ws for a in actions)
    assert h.conn.state is State.CLOSING
    h.now += CONFIG.close_timeout
    h.conn.handle_timer(h.now)
    assert CloseSocket(ws) in h.conn.next_actions()
    assert h.conn.state is State.CLOSED


def test_dispatches_arriving_while_closing_are_still_delivered() -> None:
    h = Harness().connect()
    ws = h.ws_id()
    h.conn.close(h.now)
    h.conn.next_actions()
    h.send(ws, {"op": 0, "s": 2, "t": "C2C_MESSAGE_CREATE", "d": {"id": "late"}})
    assert [d.seq for d in h.of_type(Dispatch)] == [2]


def test_close_before_start_and_twice_is_harmless() -> None:
    h = Harness()
    h.conn.close(h.now)
    h.conn.close(h.now)
    assert h.conn.state is State.CLOSED


def test_gateway_url_answer_is_used_verbatim_for_the_websocket() -> None:
    h = Harness().connect()
    assert h.opens[-1].host == GATEWAY_URL.split("/")[2]
