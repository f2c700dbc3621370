"""A scripted platform that answers a ``QQGatewayConnection`` with real HTTP and WebSocket bytes.

Each socket the client opens gets a server-side h11 or wsproto peer. By default the peers
behave like a healthy platform (token, ``/gateway/bot``, Hello, READY/RESUMED, ACKs); tests
switch behaviours off or script the server's side by hand to prove one rule at a time.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Request,
    TextMessage,
)

from qqproto import (
    Action,
    CloseSocket,
    GatewayConfig,
    Intents,
    OpenSocket,
    QQGatewayConnection,
    SendData,
)

SECRET = "s3cr3t-client-secret-value"
TOKEN = "tok-AAAA-1"
CONFIG = GatewayConfig(
    app_id="102000000",
    client_secret=SECRET,
    intents=Intents.GROUP_AND_C2C_EVENT | Intents.PUBLIC_GUILD_MESSAGES,
)
GATEWAY_URL = "wss://gw.example.test/websocket"
HELLO_MS = 40000

HttpAnswer = tuple[int, Any]


@dataclass
class HttpPeer:
    """The server side of one HTTP socket."""

    sock_id: int
    host: str
    h11: h11.Connection = field(default_factory=lambda: h11.Connection(h11.SERVER))
    method: str = ""
    target: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class WsPeer:
    """The server side of one gateway WebSocket."""

    sock_id: int
    ws: WSConnection = field(default_factory=lambda: WSConnection(ConnectionType.SERVER))
    received: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    accepted: bool = False
    beat_times: list[float] = field(default_factory=list)


Peer = Union[HttpPeer, WsPeer]


class Harness:
    """Drives one client against scripted peers; time only moves when a test moves it."""

    def __init__(
        self, config: GatewayConfig = CONFIG, *, seed: int = 0, now: float = 1000.0, ask_before_identify: bool = False
    ) -> None:
        self.conn = QQGatewayConnection(config, random.Random(seed), ask_before_identify=ask_before_identify)
        self.now = now
        self.notices: list[Action] = []
        self.log: list[Action] = []
        self.peers: dict[int, Peer] = {}
        self.closed: set[int] = set()
        self.opens: list[OpenSocket] = []
        self.http_requests: list[HttpPeer] = []
        self.token_answers: list[HttpAnswer] = []
        self.gateway_answers: list[HttpAnswer] = []
        self.send_answers: list[HttpAnswer | None] = []
        self.send_default: HttpAnswer = (200, {"id": "sent-1", "timestamp": 1})
        self.token_default: HttpAnswer = (200, {"access_token": TOKEN, "expires_in": "7200"})
        self.gateway_default: HttpAnswer = (
            200,
            {
                "url": GATEWAY_URL,
                "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1},
            },
        )
        self.refuse_connections = False
        self.hold_opens = False
        self.pending_opens: list[OpenSocket] = []
        self.answer_http = True
        self.send_hello = True
        self.hello_ms = HELLO_MS
        self.auto_ready = True
        self.auto_ack = True
        self.answer_close = True
        self.accept_upgrade = True
        self.session_counter = 0
        self.server_seq = 0
        self.event_log: list[str] = []

    # ---------------------------------------------------------------- driving the client

    def start(self) -> Harness:
        self.conn.start(self.now)
        self.pump()
        return self

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer that falls due on the way, each on time."""
        end = self.now + seconds
        while True:
            due = self.conn.next_timer()
            if due is None or due > end:
                break
            self.now = max(self.now, due)
            self.conn.handle_timer(self.now)
            self.pump()
        self.now = end

    def advance_until(self, condition: Callable[[], bool], limit: float = 600.0, step: float = 0.25) -> None:
        """Advance in small steps until ``condition()`` holds; fail after ``limit`` seconds."""
        end = self.now + limit
        while not condition():
            assert self.now < end, "condition never held"
            self.advance(step)

    def jump(self, seconds: float) -> None:
        """Move time forward in one step, as a blocked host loop would, then fire the timers."""
        self.now += seconds
        self.conn.handle_timer(self.now)
        self.pump()

    def pump(self) -> None:
        """Carry out the client's actions until it has nothing more to say."""
        while True:
            actions = self.conn.next_actions()
            if not actions:
                return
            for action in actions:
                self.log.append(action)
                if isinstance(action, OpenSocket):
                    self.opens.append(action)
                    self._open(action)
                elif isinstance(action, SendData):
                    self._server_receive(action.sock_id, action.data)
                elif isinstance(action, CloseSocket):
                    self.closed.add(action.sock_id)
                else:
                    self.notices.append(action)

    def open_pending(self) -> None:
        """Let held-back socket opens complete."""
        pending, self.pending_opens = self.pending_opens, []
        for action in pending:
            self._complete_open(action)
        self.pump()

    def _open(self, action: OpenSocket) -> None:
        if self.refuse_connections:
            self.conn.socket_failed(action.sock_id, "connection refused", self.now)
            return
        if self.hold_opens:
            self.pending_opens.append(action)
            return
        self._complete_open(action)

    def _complete_open(self, action: OpenSocket) -> None:
        if action.host == "gw.example.test":
            self.peers[action.sock_id] = WsPeer(action.sock_id)
        else:
            self.peers[action.sock_id] = HttpPeer(action.sock_id, action.host)
        self.conn.socket_opened(action.sock_id, self.now)

    def deliver(self, sock_id: int, data: bytes) -> None:
        """Bytes from the server to the client."""
        if sock_id in self.closed:
            return
        self.conn.receive_data(sock_id, data, self.now)
        self.pump()

    # ---------------------------------------------------------------- the server's side

    def _server_receive(self, sock_id: int, data: bytes) -> None:
        peer = self.peers.get(sock_id)
        if isinstance(peer, HttpPeer):
            self._http_receive(peer, data)
        elif isinstance(peer, WsPeer):
            self._ws_receive(peer, data)

    def _http_receive(self, peer: HttpPeer, data: bytes) -> None:
        peer.h11.receive_data(data)
        while True:
            event = peer.h11.next_event()
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return
            if isinstance(event, h11.Request):
                peer.method = event.method.decode()
                peer.target = event.target.decode()
                peer.headers = {k.decode().lower(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                peer.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.http_requests.append(peer)
                if self.answer_http:
                    self._answer(peer)
                return

    def _answer(self, peer: HttpPeer) -> None:
        if peer.target.endswith("/getAppAccessToken"):
            status, body = self.token_answers.pop(0) if self.token_answers else self.token_default
        elif peer.target.endswith("/gateway/bot"):
            status, body = self.gateway_answers.pop(0) if self.gateway_answers else self.gateway_default
        elif peer.target.endswith("/messages"):
            answer = self.send_answers.pop(0) if self.send_answers else self.send_default
            if answer is None:
                return  # no answer: the test decides what happens to the socket
            status, body = answer
        else:
            status, body = 404, {"message": "not found"}
        self.http_reply(peer.sock_id, status, body)

    def http_reply(self, sock_id: int, status: int, body: Any) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        peer = self.peers[sock_id]
        assert isinstance(peer, HttpPeer)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(raw))),
            ("X-Tps-Trace-Id", "trace-1"),
        ]
        out = peer.h11.send(h11.Response(status_code=status, headers=headers))
        out = (out or b"") + (peer.h11.send(h11.Data(data=raw)) or b"") + (peer.h11.send(h11.EndOfMessage()) or b"")
        self.deliver(sock_id, out)

    def _ws_receive(self, peer: WsPeer, data: bytes) -> None:
        peer.ws.receive_data(data)
        for event in list(peer.ws.events()):
            if isinstance(event, Request):
                if not self.accept_upgrade:
                    continue
                peer.accepted = True
                self.deliver(peer.sock_id, peer.ws.send(AcceptConnection()))
                if self.send_hello:
                    self.send(peer.sock_id, {"op": 10, "d": {"heartbeat_interval": self.hello_ms}})
            elif isinstance(event, TextMessage):
                self._ws_payload(peer, json.loads(event.data))
            elif isinstance(event, CloseConnection):
                peer.close_code = event.code
                if self.answer_close and peer.ws.state is ConnectionState.REMOTE_CLOSING:
                    self.deliver(peer.sock_id, peer.ws.send(event.response()))
            elif isinstance(event, (BytesMessage, Ping, Message)):
                pass

    def _ws_payload(self, peer: WsPeer, payload: dict[str, Any]) -> None:
        peer.received.append(payload)
        op = payload.get("op")
        if op == 1:
            peer.beat_times.append(self.now)
        if op == 1 and self.auto_ack:
            self.send(peer.sock_id, {"op": 11})
        elif op == 2 and self.auto_ready:
            self.session_counter += 1
            self.server_seq = 1
            self.send(
                peer.sock_id,
                {
                    "op": 0,
                    "s": 1,
                    "t": "READY",
                    "d": {
                        "version": 1,
                        "session_id": f"session-{self.session_counter}",
                        "user": {"id": "42", "username": "bot", "bot": True},
                        "shard": [0, 1],
                    },
                },
            )
        elif op == 6 and self.auto_ready:
            self.send(peer.sock_id, {"op": 0, "s": self.server_seq, "t": "RESUMED", "d": ""})

    def send(self, sock_id: int, payload: Any) -> None:
        """A gateway message from the server."""
        self.send_text(sock_id, json.dumps(payload, ensure_ascii=False))

    def send_text(self, sock_id: int, text: str) -> None:
        peer = self.peers[sock_id]
        assert isinstance(peer, WsPeer)
        if peer.ws.state is ConnectionState.OPEN:
            self.deliver(sock_id, peer.ws.send(TextMessage(data=text)))

    def dispatch(self, event_type: str = "GROUP_AT_MESSAGE_CREATE", d: Any = None, *, seq: int | None = None) -> int:
        """Push one dispatch on the live gateway socket; return its seq."""
        if seq is None:
            self.server_seq += 1
            seq = self.server_seq
        self.send(self.ws_id(), {"op": 0, "s": seq, "t": event_type, "d": d or {"id": f"msg-{seq}"}, "id": f"ev-{seq}"})
        return seq

    def server_close(self, code: int, reason: str = "", sock_id: int | None = None) -> None:
        """The server closes the gateway socket with a close frame."""
        sid = self.ws_id() if sock_id is None else sock_id
        peer = self.peers[sid]
        assert isinstance(peer, WsPeer)
        self.deliver(sid, peer.ws.send(CloseConnection(code=code, reason=reason)))

    # ---------------------------------------------------------------- looking at what happened

    def ws_id(self) -> int:
        """The newest gateway socket still open."""
        live = [sid for sid, peer in self.peers.items() if isinstance(peer, WsPeer) and sid not in self.closed]
        assert live, "no open gateway socket"
        return live[-1]

    def ws_peers(self) -> list[WsPeer]:
        return [peer for peer in self.peers.values() if isinstance(peer, WsPeer)]

    def sent_ops(self, op: int) -> list[dict[str, Any]]:
        """Every payload with this opcode the client sent, across all sockets, in order."""
        return [p for peer in self.ws_peers() for p in peer.received if p.get("op") == op]

    def requests_to(self, suffix: str) -> list[HttpPeer]:
        return [peer for peer in self.http_requests if peer.target.endswith(suffix)]

    def of_type(self, kind: type) -> list[Any]:
        return [action for action in self.notices if isinstance(action, kind)]

    def connect(self) -> Harness:
        """Start and run to READY."""
        self.start()
        assert self.conn.state.value == "connected", self.conn.state
        return self


def where(items: list[Any], predicate: Callable[[Any], bool]) -> list[Any]:
    return [item for item in items if predicate(item)]
