"""What only the thread transport offers: a blocking iterator, ``stop()`` from any thread, thread-safe health."""

from __future__ import annotations

import threading

import pytest
from harness import TIMEOUT, client_config, live_threads, push

from qqproto import Dispatch, Ready
from qqproto.testing.serve import LoopbackPlatform
from transports._common import GatewayFatalError
from transports.threaded import GatewayThread


def test_events_blocks_until_stop_from_another_thread_ends_it(lp: LoopbackPlatform) -> None:
    threads = live_threads()
    gateway = GatewayThread(client_config(lp), lp.client_ssl_context())
    gateway.start()
    watchdog = threading.Timer(TIMEOUT, gateway.stop)
    watchdog.start()
    stopper = threading.Thread(target=gateway.stop)
    pushed: list[str] = []
    dispatches: list[Dispatch] = []
    for event in gateway.events():
        if isinstance(event, Ready):
            pushed = push(lp, 50)
        elif isinstance(event, Dispatch):
            dispatches.append(event)
            assert gateway.health().dispatches_delivered >= len(dispatches)
            if len(dispatches) == 50:
                stopper.start()
    assert watchdog.is_alive(), "the iteration did not end after stop()"
    watchdog.cancel()
    watchdog.join()
    stopper.join()
    assert [d.event_id for d in dispatches] == pushed
    assert gateway.health().state == "closed"
    assert live_threads() == threads


def test_fatal_raises_from_the_blocking_iterator(lp: LoopbackPlatform) -> None:
    gateway = GatewayThread(client_config(lp), lp.client_ssl_context())
    gateway.start()
    try:
        with pytest.raises(GatewayFatalError) as raised:
            for event in gateway.events():
                if isinstance(event, Ready):
                    lp.call(lambda platform, now: platform.close_gateway(4914, now))
    finally:
        gateway.stop()
    assert raised.value.close_code == 4914
    assert gateway.health().fatal_close_code == 4914


def test_health_can_be_read_from_any_thread_while_events_flow(lp: LoopbackPlatform) -> None:
    gateway = GatewayThread(client_config(lp), lp.client_ssl_context())
    gateway.start()
    readings: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            readings.append(gateway.health().dispatches_delivered)
        readings.append(gateway.health().dispatches_delivered)  # one look after the consumer has all 300

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        count = 0
        for event in gateway.events():
            if isinstance(event, Ready):
                push(lp, 300)
            elif isinstance(event, Dispatch):
                count += 1
                if count == 300:
                    break
    finally:
        done.set()
        watcher.join()
        gateway.stop()
    assert readings == sorted(readings) and readings[-1] == 300


def test_the_blocking_iterator_ends_in_the_one_fatal_error_class(lp: LoopbackPlatform) -> None:
    gateway = GatewayThread(client_config(lp, client_secret="not-the-secret"), lp.client_ssl_context())
    gateway.start()
    try:
        with pytest.raises(GatewayFatalError) as raised:
            for _ in gateway.events():
                pass
    finally:
        gateway.stop()
    assert type(raised.value) is GatewayFatalError
    assert "rejected the credentials" in raised.value.reason
