"""A client core wired to the fake platform in memory: no sockets, no latency, one virtual clock."""

from __future__ import annotations

import random

from qqproto import CloseSocket, GatewayConfig, OpenSocket, QQGatewayConnection, Ready, SendData
from qqproto.testing import FakeQQPlatform, PlatformConfig, ServerSend

__all__ = ["Pair"]


class Pair:
    """One :class:`QQGatewayConnection` and one :class:`FakeQQPlatform`, each delivering to the other at once."""

    def __init__(self, seed: int, platform_config: PlatformConfig | None = None) -> None:
        rng = random.Random(seed)
        self.platform = FakeQQPlatform(platform_config, rng=random.Random(rng.getrandbits(64)))
        self.platform.gateway_url = "wss://api.sgroup.qq.com/websocket"
        pc = self.platform.config
        config = GatewayConfig(app_id=pc.app_id, client_secret=pc.client_secret)
        self.conn = QQGatewayConnection(config, rng=random.Random(rng.getrandbits(64)))
        self.now = 0.0
        self.wakeups = 0
        self.gateway_sock: int | None = None

    def connect(self) -> Pair:
        """Start the client and run until READY."""
        self.conn.start(self.now)
        self._pump()
        if self.gateway_sock is None:
            raise RuntimeError("the client did not reach READY")
        return self

    def run_until(self, end: float) -> None:
        """Advance the clock to ``end``, serving each side's timer when due and counting the client's."""
        while True:
            client_due, platform_due = self.conn.next_timer(), self.platform.next_timer()
            due = min((t for t in (client_due, platform_due) if t is not None), default=None)
            if due is None or due > end:
                break
            self.now = max(self.now, due)
            if client_due is not None and client_due <= self.now:
                self.wakeups += 1
                self.conn.handle_timer(self.now)
            if platform_due is not None and platform_due <= self.now:
                self.platform.handle_timer(self.now)
            self._pump()
        self.now = end

    def _pump(self) -> None:
        actions = self.conn.next_actions()
        while True:
            replies = self.platform.next_actions()
            if not actions and not replies:
                return
            for action in actions:
                if isinstance(action, OpenSocket):
                    self.platform.connection_made(action.sock_id, self.now)
                    self.conn.socket_opened(action.sock_id, self.now)
                elif isinstance(action, SendData):
                    self.platform.receive_data(action.sock_id, action.data, self.now)
                elif isinstance(action, CloseSocket):
                    self.platform.receive_data(action.sock_id, b"", self.now)
            actions = self.conn.next_actions()
            for reply in replies:
                self.conn.receive_data(reply.conn_id, reply.data if isinstance(reply, ServerSend) else b"", self.now)
                arrived = self.conn.next_actions()
                if any(isinstance(action, Ready) for action in arrived):
                    self.gateway_sock = reply.conn_id
                actions += arrived
