"""The core asks an identify gate before every new session, and never before a resume."""

from __future__ import annotations

import pytest
from helpers import Harness

from qqproto import IdentifyPermissionNeeded, IdentifySent, LocalProtocolError, OpenSocket, State


def gateway_opens(h: Harness) -> list[OpenSocket]:
    return [o for o in h.opens if o.host == "gw.example.test"]


def test_identify_waits_for_permission_before_the_gateway_socket_opens() -> None:
    h = Harness(ask_before_identify=True).start()
    [asked] = h.of_type(IdentifyPermissionNeeded)
    assert asked.shard == (0, 1)
    assert asked.session_start_limit is not None and asked.session_start_limit.max_concurrency == 1
    assert gateway_opens(h) == []
    assert h.conn.state is State.WAITING and h.conn.health(h.now).next_retry_in is None
    assert h.conn.health(h.now).identify_permission == "waiting"
    h.advance(3600)
    assert gateway_opens(h) == [] and len(h.of_type(IdentifyPermissionNeeded)) == 1
    h.conn.identify_permitted(h.now)
    h.pump()
    assert len(gateway_opens(h)) == 1
    assert h.conn.state is State.CONNECTED
    assert h.of_type(IdentifySent) == [IdentifySent((0, 1))]
    assert h.conn.health(h.now).identify_permission is None


def test_a_resume_never_asks() -> None:
    h = Harness(ask_before_identify=True).start()
    h.conn.identify_permitted(h.now)
    h.pump()
    h.server_close(4009)
    h.advance_until(lambda: h.conn.state is State.CONNECTED and len(gateway_opens(h)) == 2)
    assert len(h.sent_ops(6)) == 1
    assert len(h.of_type(IdentifyPermissionNeeded)) == 1


def test_a_forgotten_session_asks_again() -> None:
    h = Harness(ask_before_identify=True).start()
    h.conn.identify_permitted(h.now)
    h.pump()
    h.send(h.ws_id(), {"op": 9, "d": False})
    h.advance(60)
    assert len(h.of_type(IdentifyPermissionNeeded)) == 2
    assert len(gateway_opens(h)) == 1
    h.conn.identify_permitted(h.now)
    h.pump()
    assert h.conn.state is State.CONNECTED and len(h.sent_ops(2)) == 2


def test_a_permission_outlives_a_failed_token_fetch() -> None:
    h = Harness(ask_before_identify=True).start()
    h.token_answers.append((503, {"code": 503, "message": "busy"}))
    h.conn._api.token.invalidate()  # the token runs out while the gate deliberates
    h.conn.identify_permitted(h.now)
    h.pump()
    h.advance_until(lambda: h.conn.state is State.CONNECTED)
    assert len(h.of_type(IdentifyPermissionNeeded)) == 1


def test_permission_without_a_question_is_misuse() -> None:
    h = Harness(ask_before_identify=True).start()
    h.conn.identify_permitted(h.now)
    h.pump()
    with pytest.raises(LocalProtocolError, match="no IdentifyPermissionNeeded is waiting"):
        h.conn.identify_permitted(h.now)


def test_permission_for_a_self_paced_connection_is_misuse() -> None:
    h = Harness().start()
    with pytest.raises(LocalProtocolError, match="ask_before_identify=True"):
        h.conn.identify_permitted(h.now)


def test_permission_after_close_is_ignored() -> None:
    h = Harness(ask_before_identify=True).start()
    h.conn.close(h.now)
    h.pump()
    h.conn.identify_permitted(h.now)
    h.pump()
    assert h.conn.state is State.CLOSED and gateway_opens(h) == []


def test_without_a_gate_nothing_asks() -> None:
    h = Harness().connect()
    assert h.of_type(IdentifyPermissionNeeded) == [] and h.of_type(IdentifySent) == []
