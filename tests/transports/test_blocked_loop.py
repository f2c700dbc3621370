"""An application that blocks its event loop: the thread transport beats on time; the others report it and recover."""

from __future__ import annotations

import time

import pytest
from harness import HEARTBEAT_INTERVAL_MS, client_config, push_during, run, wait_until

from qqproto import Ready, ReconnectScheduled, Resumed, TimerLate
from qqproto.testing.serve import LoopbackPlatform

pytestmark = pytest.mark.anyio

#: The client's heartbeat period: Hello's interval x the default ratio 0.8.
PERIOD = HEARTBEAT_INTERVAL_MS / 1000 * 0.8
BLOCK = 3 * PERIOD
TOLERANCE = 0.25


def heartbeat_times(lp: LoopbackPlatform) -> list[float]:
    """When the platform received each heartbeat, on ``time.monotonic()``."""
    return lp.call(lambda platform, now: list(platform.heartbeat_times))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_thread_transport_beats_on_time_while_the_app_loop_is_blocked(lp: LoopbackPlatform) -> None:
    async with run("thread", client_config(lp), lp.client_ssl_context()) as client:
        await client.next(Ready)
        await wait_until(lambda: lp.counters.heartbeats >= 1)
        pusher, pushed = push_during(lp, 20, BLOCK)
        pusher.start()
        blocked_at = time.monotonic()
        time.sleep(BLOCK)  # the application blocks its own loop
        unblocked_at = time.monotonic()
        pusher.join()
        dispatches = await client.dispatches(20)
        await wait_until(lambda: heartbeat_times(lp)[-1] > unblocked_at + PERIOD)
        beats = heartbeat_times(lp)
    gaps = [later - earlier for earlier, later in zip(beats, beats[1:])]
    lateness = max(gaps) - PERIOD
    print(
        f"\nthread transport, app loop blocked {BLOCK:.2f}s: beats at "
        f"{', '.join(f'{t - blocked_at:+.3f}' for t in beats)}s from the block; "
        f"max gap {max(gaps):.3f}s, max lateness {lateness * 1000:.1f} ms"
    )
    assert beats[0] <= blocked_at and beats[-1] > unblocked_at + PERIOD
    assert max(gaps) <= PERIOD + TOLERANCE
    assert [d.event_id for d in dispatches] == pushed
    assert not client.of(ReconnectScheduled)
    counters = lp.counters
    assert (counters.identifies, counters.resumes, counters.heartbeat_timeouts) == (1, 0, 0)


@pytest.mark.platform(heartbeat_timeout=PERIOD * 1.5)
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_blocked_loop_is_reported_and_recovered_by_resume(anyio_backend: str, lp: LoopbackPlatform) -> None:
    async with run(anyio_backend, client_config(lp), lp.client_ssl_context()) as client:
        ready = await client.next(Ready)
        await wait_until(lambda: lp.counters.heartbeats >= 1)
        pusher, pushed = push_during(lp, 20, BLOCK)
        pusher.start()
        time.sleep(BLOCK)  # the application blocks the loop the transport runs on
        pusher.join()
        late = await client.next(TimerLate)
        resumed = await client.next(Resumed)
        dispatches = await client.dispatches(20)
    print(f"\n{anyio_backend} transport, loop blocked {BLOCK:.2f}s: TimerLate lag {late.lag * 1000:.0f} ms")
    assert late.lag > 0.2
    assert resumed.session_id == ready.session_id
    assert [d.event_id for d in dispatches] == pushed
    counters = lp.counters
    assert counters.heartbeat_timeouts >= 1 and counters.close_codes_sent.get(4009, 0) >= 1
    assert counters.identifies == 1 and counters.resumes_ok >= 1
