"""The core's parts by themselves: each answers with a value, so each is tested by its answers."""

from __future__ import annotations

import json
import random

import h11
import pytest
from helpers import CONFIG

from qqproto import GatewayConfig, State
from qqproto._backoff import Backoff
from qqproto._close_codes import CLOSE_RULES, CloseAction, rule_for_close
from qqproto._heartbeat import Beat, Heartbeat
from qqproto._http import HttpResponse
from qqproto._identify_gate import IdentifyGate
from qqproto._recovery import GiveUp, Recovery, disconnect_for_close
from qqproto._session import Session, SessionStartLimit
from qqproto._sockets import Kind, Sockets
from qqproto._state import FINAL_STATES, STOPPED_STATES, TRANSITIONS, Machine
from qqproto._token import CredentialsRejected, TokenCache, TokenIssued, TokenUnavailable

# ---------------------------------------------------------------- Backoff


def test_backoff_doubles_from_base_up_to_its_cap_drawing_from_the_upper_half() -> None:
    backoff = Backoff(GatewayConfig("1", "s", backoff_base=1.0, backoff_cap=8.0), random.Random(0))
    delays = [backoff.next_delay(immediate=False) for _ in range(6)]
    for delay, ceiling in zip(delays, [1.0, 1.0, 2.0, 4.0, 8.0, 8.0]):
        assert ceiling / 2 <= delay <= ceiling
    assert backoff.attempts == 6


def test_backoff_immediate_only_the_first_time_and_never_below_the_floor() -> None:
    backoff = Backoff(CONFIG, random.Random(0))
    assert backoff.next_delay(immediate=True) == 0.0
    assert backoff.next_delay(immediate=True) > 0.0
    assert backoff.next_delay(immediate=False, floor=42.0) == 42.0


def test_backoff_cools_down_after_quick_disconnects_and_forgets_them_on_reset() -> None:
    config = GatewayConfig("1", "s", quick_disconnect_limit=2, cooldown=60.0)
    backoff = Backoff(config, random.Random(0))
    backoff.connection_ended(1.0)
    assert not backoff.cooling_down
    backoff.connection_ended(1.0)
    assert backoff.cooling_down and backoff.next_delay(immediate=True) >= 60.0
    backoff.connection_ended(None)  # a socket that never opened says nothing
    assert backoff.cooling_down
    backoff.reset()
    assert not backoff.cooling_down and backoff.attempts == 0


# ---------------------------------------------------------------- Heartbeat


def test_heartbeat_beats_sends_then_calls_an_unanswered_beat_a_zombie() -> None:
    hb = Heartbeat(10.0, now=0.0)
    assert hb.due_at == 10.0 and hb.due(10.0, late=False) is Beat.SEND
    hb.sent(10.0)
    assert hb.due_at == 20.0
    assert hb.due(20.0, late=True) is Beat.SEND  # a blocked loop may hide the ACK
    assert hb.due(20.0, late=False) is Beat.ZOMBIE


def test_heartbeat_ack_measures_latency_once() -> None:
    hb = Heartbeat(10.0, now=0.0)
    assert hb.ack(1.0) is None  # nothing was waiting
    hb.sent(10.0)
    assert hb.ack(10.25) == 0.25
    assert hb.ack(11.0) is None and hb.latency == 0.25 and hb.last_ack_at == 11.0


# ---------------------------------------------------------------- TokenCache


def token_answer(status: int, body: object) -> HttpResponse:
    return HttpResponse(status, (), json.dumps(body).encode())


def test_token_cache_stores_a_token_and_refreshes_ahead_of_expiry() -> None:
    cache = TokenCache(GatewayConfig("1", "s", token_refresh_margin=50.0))
    assert cache.accept(token_answer(200, {"access_token": "t-1", "expires_in": "7200"}), 100.0) == TokenIssued(7200)
    assert cache.usable(7299.0) and not cache.usable(7300.0)
    assert cache.refresh_at == 100.0 + 7150.0 and cache.authorization == "t-1"
    cache.invalidate()
    assert not cache.usable(101.0)
    with pytest.raises(RuntimeError):
        _ = cache.authorization


def test_token_cache_request_carries_the_credentials_in_the_body() -> None:
    cache = TokenCache(CONFIG)
    server = h11.Connection(h11.SERVER)
    server.receive_data(cache.request().request_bytes())
    request, data = server.next_event(), server.next_event()
    assert isinstance(request, h11.Request) and request.method == b"POST"
    assert isinstance(data, h11.Data)
    assert json.loads(data.data) == {"appId": CONFIG.app_id, "clientSecret": CONFIG.client_secret}
    assert cache.fetches == 1


@pytest.mark.parametrize(
    "status, body, result",
    [
        (401, {"message": "no"}, CredentialsRejected),
        (200, {"code": 100016}, CredentialsRejected),
        (500, {"message": "busy"}, TokenUnavailable),
        (200, {"access_token": "with space", "expires_in": 60}, TokenUnavailable),
    ],
)
def test_token_cache_tells_bad_credentials_from_passing_failures(status: int, body: object, result: type) -> None:
    cache = TokenCache(CONFIG)
    assert isinstance(cache.accept(token_answer(status, body), 0.0), result)
    assert not cache.usable(0.0)


# ---------------------------------------------------------------- states


def test_final_states_are_the_ones_the_table_leaves_no_way_out_of() -> None:
    assert {State.CLOSED, State.FATAL} == FINAL_STATES
    assert FINAL_STATES | {State.CLOSING} == STOPPED_STATES
    assert all(TRANSITIONS[state] for state in State if state not in FINAL_STATES)


def test_every_state_can_be_reached_from_idle() -> None:
    seen, todo = {State.IDLE}, [State.IDLE]
    while todo:
        for nxt in TRANSITIONS[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert seen == set(State)


def test_machine_moves_only_along_the_table() -> None:
    machine = Machine()
    machine.move(State.AUTHENTICATING)
    machine.move(State.AUTHENTICATING)  # staying is always allowed
    with pytest.raises(RuntimeError, match="no transition from authenticating to connected"):
        machine.move(State.CONNECTED)
    assert machine.state is State.AUTHENTICATING


# ---------------------------------------------------------------- close codes and the reconnect decision


@pytest.mark.parametrize(
    "code, action",
    [
        (None, CloseAction.RESUME),
        (1006, CloseAction.RESUME),
        (4009, CloseAction.RESUME),
        (4008, CloseAction.RESUME_AFTER_COOLDOWN),
        (4004, CloseAction.REFRESH_TOKEN),
        (4006, CloseAction.IDENTIFY),
        (4907, CloseAction.IDENTIFY),
        (4999, CloseAction.IDENTIFY),
        (4014, CloseAction.FATAL),
    ],
)
def test_rule_for_close(code: int | None, action: CloseAction) -> None:
    assert rule_for_close(code).action is action


def test_every_fatal_close_rule_says_what_to_do() -> None:
    fatal = [rule.meaning for rule in CLOSE_RULES.values() if rule.action is CloseAction.FATAL]
    assert fatal and all(any(word in m for word in ("check", "report", "remove", "run", "use", "apply")) for m in fatal)


def test_disconnect_for_close_names_the_code_and_sets_resume_and_floor() -> None:
    action, why = disconnect_for_close(4008, "slow down", CONFIG)
    assert action is CloseAction.RESUME_AFTER_COOLDOWN
    assert (why.cause, why.resume, why.immediate, why.floor) == ("close_4008", True, False, CONFIG.cooldown)
    assert why.reason.startswith("the gateway closed the connection with 4008 (slow down)")
    action, why = disconnect_for_close(None, "", CONFIG)
    assert (why.cause, why.resume, why.immediate) == ("connection_lost", True, True)
    assert disconnect_for_close(4006, "", CONFIG)[1].resume is False


def test_recovery_drops_a_session_whose_resumes_keep_failing() -> None:
    config = GatewayConfig("1", "s", resume_failure_limit=2)
    recovery, session = Recovery(config, random.Random(0)), Session((0, 1), lambda now: None, lambda: None)
    session.hold("s-1", 5)
    _, why = disconnect_for_close(4009, "", config)
    recovery.link_lost(why, session, 10.0, lived=1.0, resuming=True)
    assert session.resumable
    recovery.link_lost(why, session, 20.0, lived=1.0, resuming=True)
    assert not session.resumable and session.last_seq is None


def test_recovery_gives_up_when_attempts_run_out_and_counts_causes() -> None:
    recovery = Recovery(GatewayConfig("1", "s", max_reconnect_attempts=1), random.Random(0))
    _, why = disconnect_for_close(None, "", CONFIG)
    assert recovery.next_attempt(why) == 0.0
    gave_up = recovery.next_attempt(why)
    assert isinstance(gave_up, GiveUp) and "max_reconnect_attempts=1" in gave_up.reason
    assert recovery.reconnects_by_cause == {"connection_lost": 2}


# ---------------------------------------------------------------- the session start budget


def test_identify_is_spaced_by_max_concurrency_and_stops_when_the_budget_is_spent() -> None:
    gate = IdentifyGate((0, 1), Sockets(CONFIG), external=False)
    gate.limit = SessionStartLimit(total=2, remaining=2, reset_at=1000.0, max_concurrency=2)
    assert gate.delay(0.0) == 0.0
    gate.identified(0.0)
    assert gate.delay(1.0) == 1.5  # 5 s / 2 per window
    assert gate.delay(1.0) == 1.5  # asking changes nothing
    gate.identified(3.0)
    assert gate.delay(10.0) == 990.0  # spent until reset_at
    assert gate.delay(1000.0) == 0.0
    gate.identified(1000.0)
    assert gate.limit.remaining == 1 and gate.limit.reset_at == 1000.0 + 86400.0


# ---------------------------------------------------------------- sockets and deadlines


def test_a_late_deadline_gets_one_short_extension_then_expires() -> None:
    sockets = Sockets(CONFIG)
    sock = sockets.open(Kind.TOKEN, CONFIG_ENDPOINT, 0.0)
    assert sockets.next_due() == CONFIG.connect_timeout
    late_now = CONFIG.connect_timeout + 30.0
    assert sockets.expired(late_now, late=True) is None
    assert sockets.next_due() == late_now + CONFIG.late_timer_threshold
    assert sockets.expired(late_now + CONFIG.late_timer_threshold, late=True) is sock
    assert sockets.next_due() is None


CONFIG_ENDPOINT = TokenCache(CONFIG).endpoint
