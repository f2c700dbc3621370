"""The core asks an identify gate before every new session, and never before a resume."""

from __future__ import annotations

import pytest
from helpers import Harness

from qqproto import Fatal, IdentifyDone, IdentifyPermissionNeeded, LocalProtocolError, OpenSocket, Ready, State


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
    assert h.of_type(IdentifyDone) == [IdentifyDone((0, 1))]
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
    assert h.of_type(IdentifyPermissionNeeded) == [] and h.of_type(IdentifyDone) == []


def test_the_identify_is_done_with_when_ready_comes_not_when_it_is_sent() -> None:
    h = Harness(ask_before_identify=True).start()
    h.auto_ready = False
    h.conn.identify_permitted(h.now)
    h.pump()
    assert len(h.sent_ops(2)) == 1 and h.of_type(IdentifyDone) == []
    h.advance(1)
    assert h.of_type(IdentifyDone) == []
    h.send(h.ws_id(), {"op": 0, "s": 1, "t": "READY", "d": {"session_id": "s1", "user": {}, "shard": [0, 1]}})
    assert h.of_type(IdentifyDone) == [IdentifyDone((0, 1))]
    [ready] = h.of_type(Ready)
    assert h.notices.index(h.of_type(IdentifyDone)[0]) < h.notices.index(ready)


def test_an_identify_whose_socket_ends_unanswered_is_done_with_once() -> None:
    h = Harness(ask_before_identify=True).start()
    h.auto_ready = False
    h.conn.identify_permitted(h.now)
    h.pump()
    h.server_close(4008, "too fast")
    assert h.of_type(IdentifyDone) == [IdentifyDone((0, 1))]
    h.advance(60)
    assert len(h.of_type(IdentifyPermissionNeeded)) == 2 and len(h.of_type(IdentifyDone)) == 1


def test_an_identify_cut_short_by_a_fatal_close_is_done_with() -> None:
    h = Harness(ask_before_identify=True).start()
    h.auto_ready = False
    h.conn.identify_permitted(h.now)
    h.pump()
    h.server_close(4915, "banned")
    h.advance(60)
    assert h.of_type(Fatal) and h.of_type(IdentifyDone) == [IdentifyDone((0, 1))]


def test_closing_before_ready_comes_is_done_with_the_identify() -> None:
    h = Harness(ask_before_identify=True).start()
    h.auto_ready = False
    h.conn.identify_permitted(h.now)
    h.pump()
    h.conn.close(h.now)
    h.pump()
    h.advance(10)
    assert h.conn.state is State.CLOSED and h.of_type(IdentifyDone) == [IdentifyDone((0, 1))]


def test_a_resume_is_never_done_with_as_an_identify() -> None:
    h = Harness(ask_before_identify=True).start()
    h.conn.identify_permitted(h.now)
    h.pump()
    h.server_close(4009)
    h.advance_until(lambda: h.conn.state is State.CONNECTED and len(gateway_opens(h)) == 2)
    assert len(h.of_type(IdentifyDone)) == 1


def test_credentials_rejected_while_the_identify_is_unanswered_is_done_with_it() -> None:
    h = Harness(ask_before_identify=True)
    h.token_default = (200, {"access_token": "short", "expires_in": "30"})
    h.start()
    h.auto_ready = False
    h.conn.identify_permitted(h.now)
    h.pump()
    assert len(h.sent_ops(2)) == 1
    h.token_default = (401, {"code": 100016, "message": "invalid appid or secret"})
    h.advance_until(lambda: bool(h.of_type(Fatal)), limit=19)
    assert h.of_type(IdentifyDone) == [IdentifyDone((0, 1))]
