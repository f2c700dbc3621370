"""Reconnect pacing: capped exponential backoff with jitter, quick-disconnect cooldown, reset, give-up."""

from __future__ import annotations

import dataclasses
import random

import pytest
from helpers import CONFIG, Harness

from qqproto import Fatal, GatewayConfig, ReconnectScheduled, State


def delays(h: Harness) -> list[float]:
    return [a.delay for a in h.of_type(ReconnectScheduled)]


def test_backoff_is_capped_exponential_with_jitter() -> None:
    h = Harness().connect()
    h.refuse_connections = True
    h.deliver(h.ws_id(), b"")  # drop: first reconnect is immediate, then each refused connect backs off
    h.advance(3600)
    observed = delays(h)
    assert observed[0] == 0
    for n, delay in enumerate(observed[1:], start=1):
        ceiling = min(CONFIG.backoff_cap, CONFIG.backoff_base * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling, (n, delay)
    assert max(observed) <= CONFIG.backoff_cap
    assert observed[-1] >= CONFIG.backoff_cap / 2
    # Jitter: every attempt past the cap has the same ceiling, yet no two of them wait the same.
    at_cap = [
        d for n, d in enumerate(observed[1:], start=1) if CONFIG.backoff_base * 2 ** (n - 1) >= CONFIG.backoff_cap
    ]
    assert len(at_cap) >= 10
    assert len(set(at_cap)) == len(at_cap)


def test_quick_disconnects_cool_down_for_a_minute() -> None:
    h = Harness().connect()
    h.advance(CONFIG.healthy_after)
    for _ in range(CONFIG.quick_disconnect_limit + 1):  # the first close ends a healthy session
        h.advance_until(lambda: h.conn.state is State.CONNECTED)
        h.deliver(h.ws_id(), b"")  # resumed, then dropped without a word within seconds
    scheduled = h.of_type(ReconnectScheduled)
    assert scheduled[-1].delay >= CONFIG.cooldown
    assert all(s.delay < CONFIG.cooldown for s in scheduled[:-1])


def test_quick_disconnects_that_go_on_double_the_cooldown_up_to_its_cap() -> None:
    h = Harness().connect()
    delays = []
    for _ in range(CONFIG.quick_disconnect_limit + 8):
        h.advance_until(lambda: h.conn.state is State.CONNECTED, limit=4000)
        h.deliver(h.ws_id(), b"")
        delays.append(h.of_type(ReconnectScheduled)[-1].delay)
    cooled = delays[CONFIG.quick_disconnect_limit - 1 :]
    assert cooled[0] >= CONFIG.cooldown
    assert cooled[1] >= 2 * CONFIG.cooldown
    assert max(cooled) <= CONFIG.cooldown_cap
    assert cooled[-1] == CONFIG.cooldown_cap


def test_attempt_counter_resets_after_a_healthy_session() -> None:
    h = Harness().connect()
    h.refuse_connections = True
    h.deliver(h.ws_id(), b"")
    h.advance(300)
    assert h.conn.health(h.now).reconnect_attempts > 5
    h.refuse_connections = False
    h.advance(CONFIG.backoff_cap)
    assert h.conn.state is State.CONNECTED
    h.advance(CONFIG.healthy_after)
    h.server_close(4009)
    assert h.of_type(ReconnectScheduled)[-1].delay == 0
    assert h.conn.health(h.now).reconnect_attempts == 1


def test_max_reconnect_attempts_ends_in_fatal_never_in_silence() -> None:
    config = dataclasses.replace(CONFIG, max_reconnect_attempts=3)
    h = Harness(config).connect()
    h.refuse_connections = True
    h.deliver(h.ws_id(), b"")
    h.advance(3600)
    (fatal,) = h.of_type(Fatal)
    assert "gave up after 3 reconnect attempts" in fatal.reason
    assert "connection refused" in fatal.reason
    assert len(h.of_type(ReconnectScheduled)) == 3
    assert h.conn.state is State.FATAL
    assert h.conn.next_timer() is None
    assert not h.conn.health(h.now).alive


def test_max_reconnect_attempts_zero_gives_up_on_the_first_failure() -> None:
    config = dataclasses.replace(CONFIG, max_reconnect_attempts=0)
    h = Harness(config).connect()
    h.deliver(h.ws_id(), b"")
    assert len(h.of_type(Fatal)) == 1


def test_none_never_gives_up_on_transient_failures() -> None:
    h = Harness().connect()
    h.refuse_connections = True
    h.deliver(h.ws_id(), b"")
    h.advance(7 * 86400)
    assert h.of_type(Fatal) == []
    h.refuse_connections = False
    h.advance(CONFIG.backoff_cap)
    assert h.conn.state is State.CONNECTED


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_seed_gives_the_same_actions(seed: int) -> None:
    def trace() -> list[str]:
        h = Harness(seed=seed).connect()
        h.refuse_connections = True
        h.deliver(h.ws_id(), b"")
        h.advance(600)
        h.refuse_connections = False
        h.advance(120)
        h.send(h.ws_id(), {"op": 9, "d": False})
        h.advance(60)
        return [repr(a) for a in h.log]

    first, second = trace(), trace()
    assert first == second
    other = Harness(seed=seed + 100).connect()
    other.refuse_connections = True
    other.deliver(other.ws_id(), b"")
    other.advance(600)
    assert [repr(a) for a in other.log] != first[: len(other.log)]


def test_randomness_comes_only_from_the_injected_rng() -> None:
    state = random.getstate()
    h = Harness().connect()
    h.refuse_connections = True
    h.deliver(h.ws_id(), b"")
    h.advance(600)
    assert random.getstate() == state


def test_config_rejects_nonsense_with_a_message_naming_the_field() -> None:
    from qqproto import LocalProtocolError

    with pytest.raises(LocalProtocolError, match="backoff_cap"):
        GatewayConfig(app_id="1", client_secret="s", backoff_cap=0)
    with pytest.raises(LocalProtocolError, match="shard"):
        GatewayConfig(app_id="1", client_secret="s", shard=(1, 1))
    with pytest.raises(LocalProtocolError, match="api_base"):
        GatewayConfig(app_id="1", client_secret="s", api_base="ftp://x")
    with pytest.raises(LocalProtocolError, match="app_id"):
        GatewayConfig(app_id="", client_secret="s")
