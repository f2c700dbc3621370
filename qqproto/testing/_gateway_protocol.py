"""The fake platform's gateway side: a socket's WebSocket messages, its sessions, and what goes out on it.

:class:`GatewayProtocol` is the half of :class:`~._platform.FakeQQPlatform` that speaks on an
upgraded socket (Hello, heartbeats, Identify, Resume, the replay, close frames); the platform
keeps the HTTP side, events and faults. It declares the state it shares with the platform.
"""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Callable

from ._actions import ServerAction, ServerClose, ServerSend
from ._api import API
from ._config import PlatformConfig
from ._counters import PlatformCounters
from ._http_server import HTTPServer
from ._json import dumps, is_int, loads
from ._sessions import Session
from ._shards import TOO_MANY_IDENTIFIES, ShardRules
from ._ws_server import Binary, PeerClosed, ProtocolError, Reply, Text, WSServer

__all__ = ["CLOSE_REASONS", "GatewayProtocol", "Socket"]

#: Close codes the platform sends and their reasons (docs/protocol.md §5.1, §5.2).
CLOSE_REASONS: dict[int, str] = {
    4001: "invalid opcode",
    4002: "invalid payload",
    4004: "authentication fail",
    4005: "already authenticated",
    4006: "invalid session id",
    4007: "seq error",
    4008: "payload too fast",
    4009: "Session timed out",
    4010: "invalid shard",
    4011: "too many guilds",
    4012: "invalid version",
    4013: "invalid intent",
    4014: "intent not authorized",
    4902: "reset by resume",
    4903: "create session error",
    4914: "bot offline, sandbox only",
    4915: "bot banned",
}

HEARTBEAT_ACK = dumps({"op": 11})


class Socket:
    """One client connection: HTTP until it upgrades, then a gateway WebSocket."""

    def __init__(self, conn_id: int) -> None:
        self.conn_id = conn_id
        self.http = HTTPServer()
        self.ws: WSServer | None = None
        self.session: Session | None = None
        self.authed = False
        self.silent = False
        self.closing = False
        self.heartbeat_deadline: float | None = None
        self.end_of_life: float | None = None
        #: A Close frame of ours went out: the client owes its answer before TCP closes.
        self.close_frame_sent = False
        #: Output held back until its due time; None stands for closing the socket.
        self.outbox: list[tuple[float, bytes | None]] = []


class GatewayProtocol:
    """A gateway socket's messages, the sessions they make, and the platform's output."""

    config: PlatformConfig
    counters: PlatformCounters
    heartbeat_times: list[float]
    abandoned_event_ids: set[str]
    bot_user: dict[str, object]
    shards: ShardRules
    _rng: random.Random
    _api: API
    _sockets: dict[int, Socket]
    _sessions: dict[str, Session]
    _current: dict[int, Session]
    _actions: list[ServerAction]
    _slow: tuple[float, float]
    _acks_stopped: bool
    _failing_resumes: tuple[int, bool]
    _opcodes: dict[int, Callable[[Socket, object, float], None]]

    # -- gateway ------------------------------------------------------------------------

    def _receive_ws(self, sock: Socket, data: bytes, now: float) -> None:
        assert sock.ws is not None
        for item in sock.ws.receive_data(data):
            if not self._is_open(sock):
                return
            if isinstance(item, Text):
                self._receive_payload(sock, item.text, now)
            elif isinstance(item, Binary):
                self._close(sock, now, 4002)
            elif isinstance(item, Reply):
                self._send(sock, item.data, now)
            elif isinstance(item, PeerClosed):
                if item.code is not None:
                    received = self.counters.close_codes_received
                    received[item.code] = received.get(item.code, 0) + 1
                self._send(sock, item.reply, now)
                self._close(sock, now)
            elif isinstance(item, ProtocolError):
                self._send(sock, item.reply, now)
                self._count_close(item.code)
                self._close(sock, now)

    def _receive_payload(self, sock: Socket, text: str, now: float) -> None:
        try:
            payload = loads(text)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not is_int(payload.get("op")):
            self._close(sock, now, 4002)
            return
        handler = self._opcodes.get(payload["op"])
        if handler is None:
            self._close(sock, now, 4001)
        else:
            handler(sock, payload.get("d"), now)

    def _heartbeat(self, sock: Socket, d: object, now: float) -> None:
        self.counters.heartbeats += 1
        self.heartbeat_times.append(now)
        sock.heartbeat_deadline = now + self.config.effective_heartbeat_timeout
        if sock.session is not None and is_int(d):
            sock.session.saw(d)
        if not self._acks_stopped:
            self._send_text(sock, HEARTBEAT_ACK, now)
            self.counters.heartbeat_acks += 1

    def _identify(self, sock: Socket, d: object, now: float) -> None:
        self.counters.identifies += 1
        if sock.authed:
            self._close(sock, now, 4005)
            return
        if not isinstance(d, dict) or not isinstance(d.get("token"), str):
            self._close(sock, now, 4002)
            return
        if not self._api.authorised(d["token"], now):
            self._close(sock, now, 4004)
            return
        intents = d.get("intents")
        if not is_int(intents):
            self._close(sock, now, 4013)
            return
        if intents & ~self.config.allowed_intents:
            if self.config.intents_field_behaviour:
                self._refuse_session(sock, now)
            else:
                self._close(sock, now, 4014)
            return
        shard = self.shards.shard(d.get("shard") or [0, 1])
        if shard is None:
            self._close(sock, now, 4010)
            return
        if not self.shards.admit(shard[0], now):
            self.counters.identifies_throttled += 1
            self._close(sock, now, *TOO_MANY_IDENTIFIES)
            return
        if not self._api.session_starts.take(now):
            self._refuse_session(sock, now)
            return
        self._start_session(sock, shard, now)

    def _refuse_session(self, sock: Socket, now: float) -> None:
        self._send_text(sock, dumps({"op": 9, "d": False}), now)
        self._close(sock, now, 4903)

    def _start_session(self, sock: Socket, shard: tuple[int, int], now: float) -> None:
        self.shards.serving(shard[0], sock.conn_id)
        old = self._current.get(shard[0])
        if old is not None:
            self._drop(old, now)
        session_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        session = Session(session_id, shard, self.config.event_log_limit)
        self._sessions[session_id] = session
        self._current[shard[0]] = session
        self._attach(sock, session)
        ready = {"version": 1, "session_id": session_id, "user": self.bot_user, "shard": list(shard)}
        self._send_text(sock, dumps({"op": 0, "s": 1, "t": "READY", "d": ready}), now)
        self.counters.ready_sent += 1

    def _resume(self, sock: Socket, d: object, now: float) -> None:
        self.counters.resumes += 1
        if self._resumed(sock, d, now):
            self.counters.resumes_ok += 1
        else:
            self.counters.resumes_failed += 1

    def _resumed(self, sock: Socket, d: object, now: float) -> bool:
        """Answer a Resume; True if it ended in RESUMED."""
        if sock.authed:
            self._close(sock, now, 4005)
            return False
        if (
            not isinstance(d, dict)
            or not isinstance(d.get("token"), str)
            or not isinstance(d.get("session_id"), str)
            or not (d.get("seq") is None or is_int(d["seq"]))
        ):
            self._close(sock, now, 4002)
            return False
        if not self._api.authorised(d["token"], now):
            self._close(sock, now, 4004)
            return False
        self._expire_sessions(now)
        session = self._sessions.get(d["session_id"])
        if session is None:
            self._send_text(sock, dumps({"op": 9, "d": False}), now)
            return False
        failures, resumable = self._failing_resumes
        if failures > 0:
            self._failing_resumes = (failures - 1, resumable)
            self._send_text(sock, dumps({"op": 9, "d": resumable}), now)
            if not resumable:
                self._drop(session, now)
            return False
        seq: int = d.get("seq") or 0
        if seq > session.last_seq:
            self._close(sock, now, 4007)
            return False
        missed = session.after(seq)
        if missed is None:
            self._drop(session, now)
            self._send_text(sock, dumps({"op": 9, "d": False}), now)
            return False
        self.shards.serving(session.shard[0], sock.conn_id)
        old_sock = self._attached_socket(session)
        if old_sock is not None:
            self._close(old_sock, now, 4009)
        self._attach(sock, session)
        session.saw(seq)
        for s, text in missed:
            self._send_text(sock, text, now)
            if s > session.sent_seq:
                self.counters.events_sent += 1
            else:
                self.counters.events_replayed += 1
        session.sent_seq = session.last_seq
        self._send_text(sock, dumps({"op": 0, "s": session.last_seq, "t": "RESUMED", "d": ""}), now)
        return True

    # -- sessions -----------------------------------------------------------------------

    def _attach(self, sock: Socket, session: Session) -> None:
        sock.session = session
        sock.authed = True
        session.conn_id = sock.conn_id
        session.detached_at = None

    def _detach(self, sock: Socket, now: float) -> None:
        session, sock.session = sock.session, None
        if session is not None:
            session.conn_id = None
            session.detached_at = now
            self.shards.released(session.shard[0], sock.conn_id)

    def _attached_socket(self, session: Session) -> Socket | None:
        return None if session.conn_id is None else self._sockets.get(session.conn_id)

    def _drop(self, session: Session, now: float) -> None:
        """Forget ``session``, counting what it never delivered; a socket still on it is closed 4006."""
        sock = self._attached_socket(session)
        if sock is not None:
            self._close(sock, now, 4006)
        abandoned = session.unseen_event_ids()
        self.counters.events_abandoned += len(abandoned)
        self.abandoned_event_ids.update(abandoned)
        del self._sessions[session.session_id]
        if self._current.get(session.shard[0]) is session:
            del self._current[session.shard[0]]

    def _expire_sessions(self, now: float) -> None:
        for session in list(self._sessions.values()):
            if session.detached_at is not None and now >= session.detached_at + self.config.resume_window:
                self._drop(session, now)

    # -- output -------------------------------------------------------------------------

    def _gateway_sockets(self) -> list[Socket]:
        return [s for s in self._sockets.values() if s.ws is not None and self._is_open(s) and not s.silent]

    def _is_open(self, sock: Socket) -> bool:
        return self._sockets.get(sock.conn_id) is sock and not sock.closing

    def _send_text(self, sock: Socket, text: str, now: float) -> None:
        assert sock.ws is not None
        self._send(sock, sock.ws.send_text(text), now)

    def _send(self, sock: Socket, data: bytes, now: float, slow: bool = False) -> float:
        """Queue ``data`` behind anything held back; returns when it goes out."""
        delay, until = self._slow
        due = now + delay if slow and now < until else now
        if sock.outbox:
            due = max(due, sock.outbox[-1][0])
        if data and due > now:
            sock.outbox.append((due, data))
        elif data:
            self._actions.append(ServerSend(sock.conn_id, data))
        return due

    def _close(self, sock: Socket, now: float, code: int | None = None, reason: str = "") -> None:
        """Send a close frame if ``code``, then close the socket, behind anything held back."""
        if not self._is_open(sock):
            return
        if code is not None and sock.ws is not None and sock.ws.open:
            self._send(sock, sock.ws.close(code, reason or CLOSE_REASONS.get(code, "")), now)
            self._count_close(code)
            sock.close_frame_sent = True
        sock.closing = True
        sock.heartbeat_deadline = sock.end_of_life = None
        self._detach(sock, now)
        if sock.outbox:
            sock.outbox.append((sock.outbox[-1][0], None))
        else:
            self._forget(sock)

    def _forget(self, sock: Socket) -> None:
        del self._sockets[sock.conn_id]
        self._actions.append(ServerClose(sock.conn_id, sock.close_frame_sent))

    def _count_close(self, code: int) -> None:
        self.counters.close_codes_sent[code] = self.counters.close_codes_sent.get(code, 0) + 1

    def _random_string(self, length: int) -> str:
        return "".join(self._rng.choice(string.ascii_lowercase + string.digits) for _ in range(length))
