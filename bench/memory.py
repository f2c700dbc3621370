"""Memory an idle connection holds: tracemalloc over many connected cores, each idle past a few heartbeats."""

from __future__ import annotations

import gc
import tracemalloc

from qqproto import QQGatewayConnection

from ._pair import Pair
from ._settings import Settings
from ._stats import Figures

__all__ = ["run"]

#: How long each connection idles after READY: a few heartbeats and their ACKs.
IDLE_SECONDS = 120.0


def idle(seed: int) -> QQGatewayConnection:
    """A connection at READY that then idled ``IDLE_SECONDS``; its platform is dropped."""
    pair = Pair(seed).connect()
    pair.run_until(pair.now + IDLE_SECONDS)
    return pair.conn


def run(settings: Settings) -> Figures:
    """Bytes traced per connection, once the platforms that served them are gone."""
    count = settings.idle_connections
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        connections: list[QQGatewayConnection] = [idle(seed) for seed in range(count)]
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(connections) == count
    return {"memory_per_connection_bytes": held / count}
