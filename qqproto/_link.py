"""One gateway WebSocket: Hello, Identify or Resume, dispatches, heartbeats; it answers how it ended.

The link never reconnects by itself. ``receive`` and ``beat_due`` return None while it lives,
or the ending (:class:`Drop`, :class:`PeerClosed`, :class:`Broken`) for the lifecycle to carry out.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

from ._close_codes import RECONNECT_REQUEST
from ._config import GatewayConfig
from ._events import HeartbeatAcked, HeartbeatSent, Ready, Resumed, new_dispatch
from ._gateway_url import GatewayUrlCache
from ._heartbeat import Beat, Heartbeat
from ._payloads import BadPayload, NotUtf8, Opcode, Payload, heartbeat, identify, parse_payload, resume
from ._recovery import Disconnect
from ._session import Session
from ._sockets import Socket, Sockets
from ._state import Machine, State
from ._token import TokenCache
from ._websocket import WebSocketClient, WsClosed, WsFailed

__all__ = ["RECONNECT_CLOSE_CODE", "Broken", "Drop", "Ending", "Link", "PeerClosed"]

# Close code the client sends when it drops a socket to reconnect: not 1000, so the session survives.
RECONNECT_CLOSE_CODE = 3000
# Close code for a gateway message that cannot be read.
BAD_DATA_CLOSE_CODE = 1007


@dataclass(frozen=True)
class Drop:
    """The client gives the socket up: close it with ``code`` and reconnect as ``why`` says."""

    code: int
    why: Disconnect


@dataclass(frozen=True)
class PeerClosed:
    """The gateway closed the socket with ``code`` (None: without a close frame)."""

    code: int | None
    reason: str


@dataclass(frozen=True)
class Broken:
    """The socket broke the WebSocket protocol; ``cause`` is the key it is counted by."""

    reason: str
    cause: str


Ending = Union[Drop, PeerClosed, Broken]


class Link:
    """The gateway socket after it was opened: moves the state from CONNECTING to CONNECTED by itself."""

    __slots__ = (
        "_config",
        "_gateway",
        "_machine",
        "_rng",
        "_session",
        "_sockets",
        "_token",
        "beat_at",
        "heartbeat",
        "sock",
        "ws",
    )

    def __init__(
        self,
        sock: Socket,
        config: GatewayConfig,
        rng: random.Random,
        sockets: Sockets,
        machine: Machine,
        session: Session,
        token: TokenCache,
        gateway: GatewayUrlCache,
    ) -> None:
        self.sock = sock
        self.ws = sock.ws = WebSocketClient(
            sock.endpoint,
            max_message_size=config.max_message_size,
            max_handshake_size=config.max_http_header_size,
            rng=rng,
        )
        self._config = config
        self._rng = rng
        self._sockets = sockets
        self._machine = machine
        self._session = session
        self._token = token
        self._gateway = gateway
        self.heartbeat: Heartbeat | None = None
        self.beat_at: float | None = None

    def opened(self, now: float) -> None:
        """The socket is connected: send the upgrade and wait for Hello."""
        self._sockets.send(self.sock, self.ws.handshake_bytes())
        self._sockets.set_deadline(self.sock, now, self._config.hello_timeout, "no Hello from the gateway")

    def stop_beating(self) -> None:
        """No more heartbeats (the link is closing)."""
        self.heartbeat = None
        self.beat_at = None

    # ------------------------------------------------------------------ receiving

    def receive(self, data: bytes, now: float) -> Ending | None:
        """Bytes from the socket; stops at the first message that ends the link."""
        events, reply = self.ws.receive(data)
        sock, session = self.sock, self._session
        self._sockets.send(sock, reply)
        actions = self._sockets.actions
        for event in events:
            if type(event) is bytes or type(event) is str:
                # One gateway message; this is the receive path's inner loop, so it is spelled out here.
                try:
                    payload = parse_payload(event)
                    if payload.op == _DISPATCH:  # delivered while a close completes too
                        _, d, s, t, event_id = payload
                        if s is None or t is None:
                            raise BadPayload("dispatch without an integer 's' and a string 't'")
                        if t == "READY" or t == "RESUMED":
                            self._on_session_dispatch(payload, now)
                            continue
                        last_seq = session.last_seq
                        if last_seq is not None and s <= last_seq:
                            continue  # replayed: the application has it already
                        session.last_seq = s
                        session.dispatches_delivered += 1
                        actions.append(new_dispatch(t, d, s, event_id))
                    elif self._machine.state is not State.CLOSING:
                        handler = _OPCODE_HANDLERS.get(payload.op)
                        if handler is None:
                            raise BadPayload(f"gateway sent unknown opcode {payload.op}")
                        ending = handler(self, payload, now)
                        if ending is not None:
                            return ending
                except BadPayload as exc:
                    if self._machine.state is not State.CLOSING:
                        return Drop(BAD_DATA_CLOSE_CODE, Disconnect("bad_input", str(exc), resume=True))
                    if isinstance(exc, NotUtf8):
                        return Broken(str(exc), "bad_input")  # as wsproto ends a broken socket
            elif isinstance(event, WsClosed):
                return PeerClosed(event.code, event.reason)
            elif isinstance(event, WsFailed):
                return Broken(event.reason, "bad_input")
        return None

    def _on_heartbeat_ack(self, payload: Payload, now: float) -> Ending | None:
        if self.heartbeat is not None:
            latency = self.heartbeat.ack(now)
            if latency is not None:
                self._sockets.actions.append(HeartbeatAcked(latency))
        return None

    def _on_heartbeat_request(self, payload: Payload, now: float) -> Ending | None:
        self._beat(now)
        return None

    def _on_reconnect(self, payload: Payload, now: float) -> Ending | None:
        rule = RECONNECT_REQUEST
        why = Disconnect("reconnect_request", rule.meaning, True, immediate=True, instruction=rule.instruction)
        return Drop(RECONNECT_CLOSE_CODE, why)

    def _on_invalid_session(self, payload: Payload, now: float) -> Ending | None:
        resumable = payload.d is True
        low, high = self._config.invalid_session_delay
        why = Disconnect(
            "invalid_session",
            f"the gateway invalidated the session (op 9, resumable={str(resumable).lower()})",
            resume=resumable,
            floor=self._rng.uniform(low, high),
        )
        return Drop(RECONNECT_CLOSE_CODE, why)

    def _on_hello(self, payload: Payload, now: float) -> Ending | None:
        if self._machine.state is not State.CONNECTING:
            return None
        d = payload.d
        interval_ms = d.get("heartbeat_interval") if isinstance(d, dict) else None
        if isinstance(interval_ms, bool) or not isinstance(interval_ms, (int, float)) or not interval_ms > 0:
            raise BadPayload(f"Hello has no positive heartbeat_interval (got {interval_ms!r:.40})")
        # About 41 s in practice (docs/protocol.md §3); anything far off is clamped, so it never makes a beat storm.
        low, high = self._config.heartbeat_interval_bounds
        interval = min(max(interval_ms, low * 1000.0), high * 1000.0) / 1000.0 * self._config.heartbeat_ratio
        self._gateway.connect_succeeded()
        self.heartbeat = Heartbeat(interval, now)
        self.beat_at = self.heartbeat.due_at
        token, session, config = self._token.authorization, self._session, self._config
        if session.session_id is not None:
            self._machine.move(State.RESUMING)
            self._send_text(resume(token, session.session_id, session.last_seq))
            self._sockets.set_deadline(self.sock, now, config.ready_timeout, "no RESUMED from the gateway")
        else:
            self._machine.move(State.IDENTIFYING)
            session.last_seq = None
            session.identified(now)
            self._send_text(identify(token, config.intents, config.shard))
            self._sockets.set_deadline(self.sock, now, config.ready_timeout, "no READY from the gateway")
        return None

    def _on_session_dispatch(self, payload: Payload, now: float) -> None:
        """READY or RESUMED: the session is live."""
        session, state = self._session, self._machine.state
        if payload.t == "READY":
            session_id, user, shard = session.read_ready(payload.d)
            if state is not State.IDENTIFYING:
                return
            session.hold(session_id, payload.s)
            self._session_started(now)
            self._sockets.actions.append(Ready(session_id, user, shard, payload.s))
        elif state is State.RESUMING and session.session_id is not None:
            assert payload.s is not None
            session.advance_seq(payload.s)
            self._session_started(now)
            session.resumed()
            self._sockets.actions.append(Resumed(session.session_id))

    def _session_started(self, now: float) -> None:
        self.sock.deadline = None
        self._machine.move(State.CONNECTED)
        self._session.started(now)

    def _send_text(self, text: str) -> None:
        self._sockets.send(self.sock, self.ws.send_text(text))

    # ------------------------------------------------------------------ heartbeats

    def beat_due(self, now: float, late: bool) -> Ending | None:
        """The heartbeat timer fired: beat, or give the socket up as a zombie."""
        self.beat_at = None
        hb = self.heartbeat
        if hb is None:
            return None
        if hb.due(now, late=late) is Beat.ZOMBIE:
            why = Disconnect(
                "zombie",
                f"zombie connection: the last heartbeat got no ACK within {hb.interval:.1f}s",
                resume=True,
                immediate=True,
            )
            return Drop(RECONNECT_CLOSE_CODE, why)
        self._beat(now)
        return None

    def _beat(self, now: float) -> None:
        hb = self.heartbeat
        if hb is None or not self.ws.is_open:
            return
        seq = self._session.last_seq
        self._send_text(heartbeat(seq))
        hb.sent(now)
        self.beat_at = hb.due_at
        self._sockets.actions.append(HeartbeatSent(seq))


# Compared with every message's opcode: a plain int, quicker to reach than the enum member.
_DISPATCH = int(Opcode.DISPATCH)
# What each opcode the gateway sends but Dispatch is answered with (docs/protocol.md §3).
_OPCODE_HANDLERS: dict[int, Callable[[Link, Payload, float], Ending | None]] = {
    Opcode.HEARTBEAT_ACK: Link._on_heartbeat_ack,
    Opcode.HELLO: Link._on_hello,
    Opcode.HEARTBEAT: Link._on_heartbeat_request,
    Opcode.RECONNECT: Link._on_reconnect,
    Opcode.INVALID_SESSION: Link._on_invalid_session,
}
