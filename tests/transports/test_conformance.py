"""The same behaviour from every transport, over real TCP and TLS against the loopback platform."""

from __future__ import annotations

import random

import anyio
import pytest
from harness import (
    client_config,
    live_tasks,
    live_threads,
    push,
    push_messages,
    run,
    wait_until,
)

from qqproto import Dispatch, MessageSent, OutgoingMessage, Ready, ReconnectScheduled, Resumed, Scene
from qqproto.testing import DispatchGenerator, FakeQQPlatform
from qqproto.testing.serve import LoopbackPlatform
from transports._common import GatewayFatalError

pytestmark = pytest.mark.anyio


def ids(dispatches: list[Dispatch]) -> list[str | None]:
    return [d.event_id for d in dispatches]


async def test_ready(transport: str, lp: LoopbackPlatform) -> None:
    async with run(transport, client_config(lp), lp.client_ssl_context()) as client:
        ready = await client.next(Ready)
        health = client.health()
    assert ready.user == lp.platform.bot_user and ready.shard == (0, 1)
    assert health.connected and health.state == "connected" and health.session_id == ready.session_id
    counters = lp.counters
    assert (counters.token_fetches, counters.gateway_calls, counters.identifies) == (1, 1, 1)


async def test_a_dispatch_stream_arrives_complete_and_in_order(transport: str, lp: LoopbackPlatform) -> None:
    generator = DispatchGenerator(random.Random(7))

    def burst(platform: FakeQQPlatform, now: float) -> list[str]:
        pushed = []
        for _ in range(20):
            event_type, data, event_id = generator.next(now)
            platform.push_event(event_type, data, now, event_id)
            pushed.append(event_id)
        return pushed

    async with run(transport, client_config(lp), lp.client_ssl_context()) as client:
        await client.next(Ready)
        pushed = []
        for _ in range(10):
            pushed += lp.call(burst)
            await anyio.sleep(0)
        dispatches = await client.dispatches(200)
    assert ids(dispatches) == pushed
    assert [d.seq for d in dispatches] == list(range(2, 202))


async def test_close_4009_resumes_and_replays_what_was_missed(transport: str, lp: LoopbackPlatform) -> None:
    def close_then_push(platform: FakeQQPlatform, now: float) -> list[str]:
        platform.close_gateway(4009, now)
        return push_messages(platform, now, 5, start=3)

    async with run(transport, client_config(lp), lp.client_ssl_context()) as client:
        ready = await client.next(Ready)
        before = push(lp, 3)
        await client.dispatches(3)
        missed = lp.call(close_then_push)
        resumed = await client.next(Resumed)
        dispatches = await client.dispatches(8)
    assert resumed.session_id == ready.session_id
    assert ids(dispatches) == before + missed
    (scheduled,) = client.of(ReconnectScheduled)
    assert (scheduled.cause, scheduled.resume, scheduled.delay) == ("close_4009", True, 0.0)
    counters = lp.counters
    assert (counters.identifies, counters.resumes_ok, counters.gateway_calls) == (1, 1, 1)
    assert counters.events_sent == 8


async def test_silence_is_found_by_missing_acks_and_resumed(transport: str, lp: LoopbackPlatform) -> None:
    def silence_then_push(platform: FakeQQPlatform, now: float) -> list[str]:
        platform.go_silent(now)
        return push_messages(platform, now, 4)

    async with run(transport, client_config(lp), lp.client_ssl_context()) as client:
        ready = await client.next(Ready)
        missed = lp.call(silence_then_push)
        scheduled = await client.next(ReconnectScheduled)
        resumed = await client.next(Resumed)
        dispatches = await client.dispatches(4)
    assert (scheduled.cause, scheduled.resume) == ("zombie", True)
    assert resumed.session_id == ready.session_id
    assert ids(dispatches) == missed
    counters = lp.counters
    assert (counters.identifies, counters.resumes_ok) == (1, 1)


async def test_op_7_reconnects_and_resumes_at_once(transport: str, lp: LoopbackPlatform) -> None:
    async with run(transport, client_config(lp), lp.client_ssl_context()) as client:
        ready = await client.next(Ready)
        lp.call(lambda platform, now: platform.send_reconnect(now))
        scheduled = await client.next(ReconnectScheduled)
        resumed = await client.next(Resumed)
        after = push(lp, 2)
        dispatches = await client.dispatches(2)
    assert (scheduled.cause, scheduled.resume, scheduled.delay) == ("reconnect_request", True, 0.0)
    assert resumed.session_id == ready.session_id
    assert ids(dispatches) == after
    counters = lp.counters
    assert (counters.identifies, counters.resumes_ok) == (1, 1)


@pytest.mark.platform(max_concurrency=50, identify_window=0.0)  # a second identify at once
async def test_op_9_false_identifies_a_new_session(transport: str, lp: LoopbackPlatform) -> None:
    async with run(transport, client_config(lp), lp.client_ssl_context()) as client:
        first = await client.next(Ready)
        lp.call(lambda platform, now: platform.invalidate_session(now, resumable=False))
        scheduled = await client.next(ReconnectScheduled)
        second = await client.next(Ready)
        after = push(lp, 2)
        dispatches = await client.dispatches(2)
    assert (scheduled.cause, scheduled.resume) == ("invalid_session", False)
    assert 0.05 <= scheduled.delay <= 0.2
    assert second.session_id != first.session_id
    assert [d.seq for d in dispatches] == [2, 3] and ids(dispatches) == after
    counters = lp.counters
    assert (counters.identifies, counters.resumes) == (2, 0)


@pytest.mark.platform(gateway_rate_limit=(1, 60), max_concurrency=50, identify_window=0.0)
async def test_the_gateway_url_is_fetched_once_and_reused(transport: str, lp: LoopbackPlatform) -> None:
    async with run(transport, client_config(lp), lp.client_ssl_context()) as client:
        await client.next(Ready)
        lp.call(lambda platform, now: platform.close_gateway(4009, now))
        await client.next(Resumed)
        lp.call(lambda platform, now: platform.send_reconnect(now))
        await client.next(Resumed)
        lp.call(lambda platform, now: platform.drop_connections(now))
        await client.next(Resumed)
        lp.call(lambda platform, now: platform.invalidate_session(now, resumable=False))
        await client.next(Ready)
        assert client.health().gateway_url_cached
    counters = lp.counters
    assert (counters.gateway_calls, counters.gateway_rate_limited) == (1, 0)
    assert (counters.ws_connections, counters.resumes_ok, counters.identifies) == (5, 3, 2)


async def test_close_4914_raises_gateway_fatal_error(transport: str, lp: LoopbackPlatform) -> None:
    async with run(transport, client_config(lp), lp.client_ssl_context()) as client:
        await client.next(Ready)
        lp.call(lambda platform, now: platform.close_gateway(4914, now))
        with pytest.raises(GatewayFatalError) as raised:
            await client.next(Dispatch)
        health = client.health()
    assert raised.value.close_code == 4914 and "4914" in raised.value.reason
    assert not health.alive and health.state == "fatal" and health.fatal_close_code == 4914
    assert lp.counters.ws_connections == 1


async def test_fatal_leaves_every_transport_as_the_one_error_class(transport: str, lp: LoopbackPlatform) -> None:
    config = client_config(lp, client_secret="not-the-secret")
    with pytest.raises(GatewayFatalError) as raised:
        async with run(transport, config, lp.client_ssl_context()) as client:
            await client.next(Dispatch)
    assert type(raised.value) is GatewayFatalError
    assert "rejected the credentials" in raised.value.reason and raised.value.close_code is None


@pytest.mark.platform(token_ttl=2, token_overlap=1.5)
async def test_a_token_refresh_leaves_the_session_alone(transport: str, lp: LoopbackPlatform) -> None:
    config = client_config(lp, token_refresh_margin=1.5)
    async with run(transport, config, lp.client_ssl_context()) as client:
        ready = await client.next(Ready)
        await wait_until(lambda: lp.counters.tokens_issued >= 2)
        after = push(lp, 3)
        dispatches = await client.dispatches(3)
        health = client.health()
    assert ids(dispatches) == after
    assert health.connected and health.session_id == ready.session_id
    assert not client.of(ReconnectScheduled)
    counters = lp.counters
    assert counters.token_fetches >= 2
    assert (counters.ws_connections, counters.identifies, counters.resumes) == (1, 1, 0)


async def test_a_graceful_close_sends_1000_and_leaves_nothing_behind(transport: str, lp: LoopbackPlatform) -> None:
    tasks, threads = live_tasks(), live_threads()
    async with run(transport, client_config(lp), lp.client_ssl_context()) as client:
        await client.next(Ready)
        pushed = push(lp, 2)
        await client.dispatches(2)
    await client.rest()
    assert ids(client.of(Dispatch)) == pushed
    assert client.health().state == "closed"
    assert lp.counters.close_codes_received == {1000: 1}
    assert lp.counters.close_codes_sent == {}
    assert live_tasks() == tasks and live_threads() == threads


async def test_a_server_certificate_from_an_unknown_ca_is_refused(transport: str, lp: LoopbackPlatform) -> None:
    async with run(transport, client_config(lp), None) as client:
        first = await client.next(ReconnectScheduled)
        await client.next(ReconnectScheduled)
        health = client.health()
    assert not client.of(Ready)
    assert "certificate verify failed" in first.reason
    assert health.last_disconnect_reason is not None and "certificate verify failed" in health.last_disconnect_reason
    assert lp.counters.token_fetches == 0

    async with run(transport, client_config(lp), lp.client_ssl_context()) as trusting:
        await trusting.next(Ready)


async def test_a_slow_consumer_loses_nothing(transport: str, lp: LoopbackPlatform) -> None:
    async with run(transport, client_config(lp), lp.client_ssl_context(), max_pending_events=8) as client:
        await client.next(Ready)
        pushed = push(lp, 200)
        await anyio.sleep(1.2)  # the application stalls for three heartbeat periods
        pushed += push(lp, 100, start=200)
        dispatches = await client.dispatches(300)
        health = client.health()
    assert ids(dispatches) == pushed
    assert health.reconnects_by_cause.get("zombie", 0) >= 1
    counters = lp.counters
    assert counters.identifies == 1 and counters.resumes_ok >= 1


async def test_a_reply_goes_out_through_the_core_and_reaches_the_platform(transport: str, lp: LoopbackPlatform) -> None:
    async with run(transport, client_config(lp), lp.client_ssl_context()) as client:
        await client.next(Ready)
        push(lp, 1)
        (message,) = await client.dispatches(1)
        lp.call(lambda platform, now: platform.messages.fail_next(2, 22009))
        answer = OutgoingMessage(Scene.C2C, "user-1", {"content": "pong", "msg_type": 0}, msg_id=message.data["id"])
        send_id = client.send_message(answer)
        sent = await client.next(MessageSent)
    assert sent.send_id == send_id and sent.message_id
    received = lp.call(lambda platform, now: list(platform.messages.received))
    assert [m.body for m in received] == [{"content": "pong", "msg_type": 0, "msg_id": "m0", "msg_seq": 1}]
    assert lp.counters.message_refusals == {22009: 2}
