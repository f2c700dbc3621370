"""Hello's heartbeat_interval is validated: a bad one is bad input, one far off is clamped, never a beat storm."""

from __future__ import annotations

import pytest
from helpers import CONFIG, Harness

from qqproto import GatewayConfig, HeartbeatSent, LocalProtocolError, ReconnectScheduled


@pytest.mark.parametrize(
    "hello, shown",
    [
        ('{"op": 10, "d": {}}', "None"),
        ('{"op": 10, "d": {"heartbeat_interval": 0}}', "0"),
        ('{"op": 10, "d": {"heartbeat_interval": -41250}}', "-41250"),
        ('{"op": 10, "d": {"heartbeat_interval": NaN}}', "nan"),
        ('{"op": 10, "d": {"heartbeat_interval": "41250"}}', "'41250'"),
    ],
)
def test_a_hello_without_a_usable_interval_is_bad_and_says_what_it_got(hello: str, shown: str) -> None:
    h = Harness()
    h.send_hello = False
    h.start()
    h.send_text(h.ws_id(), hello)
    (scheduled,) = h.of_type(ReconnectScheduled)
    assert scheduled.cause == "bad_input"
    assert scheduled.reason == f"Hello has no positive heartbeat_interval (got {shown})"
    assert h.of_type(HeartbeatSent) == []


@pytest.mark.parametrize(
    "interval_ms, used",
    [(1, 1.0), (500, 1.0), (41250, 41.25), (3_600_000, 600.0), (86_400_000, 600.0), (1e308, 600.0)],
)
def test_a_hello_interval_out_of_bounds_is_clamped(interval_ms: float, used: float) -> None:
    h = Harness()
    h.hello_ms = interval_ms  # type: ignore[assignment]
    h.connect()
    beat_every = used * CONFIG.heartbeat_ratio
    assert h.conn.health(h.now).heartbeat_interval == pytest.approx(beat_every)
    h.advance(61)
    assert len(h.of_type(HeartbeatSent)) == int(61 / beat_every)


def test_the_bounds_are_a_setting_and_nonsense_is_refused() -> None:
    h = Harness(GatewayConfig("1", "s", heartbeat_interval_bounds=(0.1, 5.0)))
    h.hello_ms = 50
    h.connect()
    assert h.conn.health(h.now).heartbeat_interval == pytest.approx(0.1 * CONFIG.heartbeat_ratio)
    for bounds in [(0.0, 600.0), (10.0, 1.0)]:
        with pytest.raises(LocalProtocolError, match="heartbeat_interval_bounds"):
            GatewayConfig("1", "s", heartbeat_interval_bounds=bounds)
