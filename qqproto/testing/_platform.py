"""A sans-IO fake of the QQ bot platform: the token endpoint, ``/gateway``, ``/gateway/bot``
and the WebSocket gateway on one endpoint, speaking real HTTP/1.1 (h11) and WebSocket
(wsproto) bytes.  Sections (§) are those of ``docs/protocol.md``; §4.N is step N
of §4's list, §14.N item N of §14's.

| Behaviour | Reference |
| --- | --- |
| ``POST /app/getAppAccessToken`` with JSON ``{appId, clientSecret}`` → 200 ``{access_token, expires_in}`` | §1, §7.1 |
| ``expires_in`` is a string: the token's remaining whole seconds | §7.1, §14.7 |
| the same token while more than ``token_overlap`` s remain; inside that window a new one, the old one valid until its own expiry | §7.2 |
| wrong appId/secret or a bad body → HTTP 401 ``{"code": 100016, "message": "invalid appid or secret"}`` | §7.1 (code and HTTP status UNCONFIRMED) |
| ``fail_token_endpoint``: the next calls answer the given status with ``{"code", "message"}`` | §9.1 |
| ``GET /users/@me`` → the bot's ``id``, ``username``, ``avatar``, ``union_openid``, ``union_user_account`` | DOC ``openapi/user/me.md`` (not in the reference) |
| ``GET /gateway`` → ``{"url"}``; ``GET /gateway/bot`` → ``url``, ``shards``, ``session_start_limit`` (``total``, ``remaining``, ``reset_after`` in ms, ``max_concurrency``) | §8.1 |
| both need ``Authorization: QQBot <valid token>``, else 401 ``{"code": 11244, "message": "token not exist or expire"}`` | §7.3, §9.4 |
| past ``gateway_rate_limit`` → HTTP 400 ``{"code": 100017, "message": "接口调用超过频率限制"}`` | §8.4 (UNCONFIRMED) |
| unknown path → 404 JSON, wrong method → 405 JSON | §9.1 |
| ``/websocket`` (or ``/websocket/``) upgrades; Hello ``{"op": 10, "d": {"heartbeat_interval": ms}}`` comes first | §1, §3.1, §4.3 |
| Identify needs ``token`` = ``QQBot <valid token>``, else close 4004 | §3.1, §5.2 |
| intents outside ``allowed_intents`` → close 4014; with ``intents_field_behaviour``, op 9 ``false`` then close 4903 "create session error" | §5.1, §6, §14.9 |
| ``shard`` ``[id, count]`` needs ``0 <= id < count <= max_shards`` (default: ``/gateway/bot``'s ``shards``), else close 4010 | §3.1, §5.1, §8.1 |
| one Identify per ``identify_window`` (5 s) per bucket ``shard_id % max_concurrency``; another → close 4008 "identify rate limit" | §8.1 (the refusal is UNCONFIRMED) |
| ``shards.peak_live``: per shard, the most sockets serving it at once; ``shards.identify_times``: when each shard identified | (bookkeeping) |
| success → READY ``{"op": 0, "s": 1, "t": "READY", "d": {version, session_id, user, shard}}``; one session start is used | §3.1, §8.1 |
| no session starts left → op 9 ``false`` then close 4903 | §8.3 (close code UNCONFIRMED) |
| Resume with a bad token → close 4004; an unknown session, or one detached longer than ``resume_window`` → op 9 ``false`` | §3.1, §5.2, §5.3 (window UNCONFIRMED) |
| Resume replays each logged dispatch with ``s > seq`` byte for byte, then RESUMED ``{"s": last seq, "d": ""}`` (not logged, no new seq); a ``seq`` beyond the last → close 4007 | §3.1, §4.5, §5.1 |
| a session lives on one socket: resuming it elsewhere closes the old socket with 4009 | §4.8, §5.1 |
| a session that dies under a live socket (replaced, invalidated) closes it with 4006 | §5.1 |
| op 1 → op 11 ``{"op": 11}`` (unless ACKs are stopped); op 1 before Identify is fine | §3.1, §4.6 |
| no op 1 for ``heartbeat_timeout`` after Hello or the last op 1 → close 4009 "Session timed out" | §4.8, §5.1 |
| ``session_lifetime`` on one socket → close 4009 "Session timed out" | §4.8 |
| dispatch ``{"op": 0, "s", "t", "d", "id"}``; ``id`` is the event id, ``"<t>:<random>"`` when not given | §2 (id format UNCONFIRMED) |
| other opcodes → close 4001; bad JSON, a bad shape or a binary frame → close 4002 | §3, §5.1 |
| Identify or Resume on an already authenticated socket → close 4005 | §5.2 |
| with ``webhook`` set, events are pushed to the bot's callback URL instead (``_push``) | §13 |
| faults: op 7, op 9 with ``d``, any close code, silence, drops, refusals, slow answers, token expiry, refused upgrades | §3.1, §4.8, §5, §12.2 |

Whatever a client sends, nothing raises: bad HTTP is answered 400 and closed, bad
WebSocket framing is closed with 1002/1007/1009 (wsproto).  The platform never reads a
clock (every input carries ``now``) and draws randomness only from the injected rng.
"""

from __future__ import annotations

import random
import string
import uuid
from typing import TYPE_CHECKING, Callable

from ._actions import ServerAction, ServerClose, ServerSend
from ._api import API
from ._config import PlatformConfig
from ._counters import PlatformCounters
from ._http_server import BadRequest, HTTPRequest, HTTPServer
from ._json import dumps, is_int, loads
from ._messages import SCENE_OF_EVENT, MessageDesk
from ._sessions import Session
from ._shards import TOO_MANY_IDENTIFIES, ShardRules
from ._ws_server import Binary, PeerClosed, ProtocolError, Reply, Text, WSServer, handshake_headers

if TYPE_CHECKING:
    from ._push import WebhookPusher

__all__ = ["CLOSE_REASONS", "FakeQQPlatform"]

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

GATEWAY_PATHS = ("/websocket", "/websocket/")
HEARTBEAT_ACK = dumps({"op": 11})
RECONNECT = dumps({"op": 7})


class _Socket:
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


class FakeQQPlatform:
    """The platform side of every socket a driver hands it, plus faults to schedule."""

    def __init__(self, config: PlatformConfig | None = None, *, rng: random.Random) -> None:
        self.config = config or PlatformConfig()
        self.counters = PlatformCounters()
        #: ``now`` of every op 1 received, for lateness measurements.
        self.heartbeat_times: list[float] = []
        #: Ids of events dropped with their session before the client proved it received them.
        self.abandoned_event_ids: set[str] = set()
        self.bot_user = {"id": str(rng.randrange(10**18, 10**19)), "username": "qqproto测试机器人", "bot": True}
        self._rng = rng
        self._api = API(self.config, rng, self.counters, self.bot_user)
        #: The shard count, identify buckets, and which sockets serve each shard.
        self.shards = ShardRules(self.config.shard_limit, self.config.max_concurrency, self.config.identify_window)
        #: The message endpoints, and every message they accepted (``messages.received``).
        self.messages = MessageDesk(self.counters, self.config.send_rate_limit, self.config.allow_active_messages)
        #: Set to push events to a webhook instead of the gateway (:meth:`LoopbackPlatform.push_to`).
        self.webhook: WebhookPusher | None = None
        self._sockets: dict[int, _Socket] = {}
        self._sessions: dict[str, Session] = {}
        self._current: dict[int, Session] = {}
        self._actions: list[ServerAction] = []
        self._refuse_until = float("-inf")
        self._slow: tuple[float, float] = (0.0, float("-inf"))
        self._acks_stopped = False
        self._failing_resumes: tuple[int, bool] = (0, True)
        self._failing_upgrades: tuple[int, int] = (0, 503)
        #: Answers requests before the platform's own routes do (the control endpoint); None: for others.
        self.control: Callable[[HTTPRequest, float], tuple[int, object] | None] | None = None
        self._opcodes: dict[int, Callable[[_Socket, object, float], None]] = {
            1: self._heartbeat,
            2: self._identify,
            6: self._resume,
        }

    # -- driver interface -------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        """What ``/gateway`` and ``/gateway/bot`` return."""
        return self._api.gateway_url

    @gateway_url.setter
    def gateway_url(self, url: str) -> None:
        self._api.gateway_url = url

    @property
    def issued_tokens(self) -> tuple[str, ...]:
        """Every access token the token endpoint has issued, expired ones included."""
        return tuple(self._api.tokens.issued)

    def connection_made(self, conn_id: int, now: float) -> bool:
        """A client connected; False means refuse it (close at once)."""
        if now < self._refuse_until:
            self.counters.refused_connections += 1
            return False
        if conn_id in self._sockets:
            raise ValueError(f"connection {conn_id!r} is already open")
        self._sockets[conn_id] = _Socket(conn_id)
        return True

    def receive_data(self, conn_id: int, data: bytes, now: float) -> None:
        """Bytes from the client; ``b""`` means it closed its side."""
        sock = self._sockets.get(conn_id)
        if sock is None or sock.silent or sock.closing:
            return
        if sock.ws is None:
            self._receive_http(sock, data, now)
        else:
            self._receive_ws(sock, data, now)

    def connection_lost(self, conn_id: int, now: float) -> None:
        """The socket broke without an orderly close; forget it."""
        sock = self._sockets.pop(conn_id, None)
        if sock is not None:
            self._detach(sock, now)

    def next_actions(self) -> list[ServerAction]:
        """Sends and closes for the driver, in order; drain after every input."""
        actions, self._actions = self._actions, []
        return actions

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` is next due."""
        due = float("inf")
        window = self.config.resume_window
        for session in self._sessions.values():
            if session.detached_at is not None and session.detached_at + window < due:
                due = session.detached_at + window
        for sock in self._sockets.values():
            if sock.outbox and sock.outbox[0][0] < due:
                due = sock.outbox[0][0]
            if sock.heartbeat_deadline is not None and sock.heartbeat_deadline < due:
                due = sock.heartbeat_deadline
            if sock.end_of_life is not None and sock.end_of_life < due:
                due = sock.end_of_life
        return None if due == float("inf") else due

    def handle_timer(self, now: float) -> None:
        """Deliver delayed answers, expire sessions and close sockets whose time is up."""
        self._expire_sessions(now)
        for sock in list(self._sockets.values()):
            while sock.outbox and sock.outbox[0][0] <= now:
                data = sock.outbox.pop(0)[1]
                if data is None:
                    self._forget(sock)
                else:
                    self._actions.append(ServerSend(sock.conn_id, data))
            if sock.heartbeat_deadline is not None and sock.heartbeat_deadline <= now:
                self.counters.heartbeat_timeouts += 1
                self._close(sock, now, 4009)
            elif sock.end_of_life is not None and sock.end_of_life <= now:
                self._close(sock, now, 4009)

    def has_live_gateway(self, now: float) -> bool:
        """True while an authenticated, non-silenced gateway socket serves the bot."""
        for sock in self._sockets.values():
            if sock.session is not None and (sock.heartbeat_deadline is None or sock.heartbeat_deadline > now):
                return True
        return False

    # -- events -------------------------------------------------------------------------

    def push_event(
        self, event_type: str, data: object, now: float, event_id: str | None = None, *, shard: int = 0
    ) -> int | None:
        """Log a dispatch in the shard's current session and send it if a socket is attached.

        Returns its seq, or None when there is no session (the event is undeliverable).
        """
        self._expire_sessions(now)
        self.counters.events_generated += 1
        if self.webhook is not None:
            return self._push_to_webhook(event_type, data, now, event_id)
        session = self._current.get(shard)
        if session is None:
            self.counters.events_undeliverable += 1
            return None
        seq = session.last_seq + 1
        if event_id is None:
            event_id = f"{event_type}:{self._random_string(40)}"
        text = dumps({"op": 0, "s": seq, "t": event_type, "d": data, "id": event_id})
        session.log(seq, event_id, text)
        scene = SCENE_OF_EVENT.get(event_type)
        if scene is not None and isinstance(data, dict) and isinstance(data.get("id"), str):
            self.messages.pushed(data["id"], scene, now)
        sock = self._attached_socket(session)
        if sock is not None:
            self._send_text(sock, text, now)
            session.sent_seq = seq
            self.counters.events_sent += 1
        return seq

    def _push_to_webhook(self, event_type: str, data: object, now: float, event_id: str | None) -> int:
        assert self.webhook is not None
        event_id = event_id if event_id is not None else f"{event_type}:{self._random_string(40)}"
        scene = SCENE_OF_EVENT.get(event_type)
        if scene is not None and isinstance(data, dict) and isinstance(data.get("id"), str):
            self.messages.pushed(data["id"], scene, now)
        return self.webhook.push(event_type, data, event_id, now)

    # -- faults -------------------------------------------------------------------------

    def send_reconnect(self, now: float) -> None:
        """Send op 7 on every open gateway socket."""
        for sock in self._gateway_sockets():
            self._send_text(sock, RECONNECT, now)

    def invalidate_session(self, now: float, resumable: bool = False) -> None:
        """Send op 9 ``d=resumable`` to every session's socket; drop the sessions unless resumable."""
        for session in list(self._current.values()):
            sock = self._attached_socket(session)
            if sock is not None:
                self._send_text(sock, dumps({"op": 9, "d": resumable}), now)
                sock.authed = False
                self._detach(sock, now)
            if not resumable:
                self._drop(session, now)

    def close_gateway(self, code: int, now: float, reason: str = "") -> None:
        """Close every open gateway socket with ``code``, then the TCP socket."""
        for sock in self._gateway_sockets():
            self._close(sock, now, code, reason)

    def stop_acks(self, now: float) -> None:
        """Stop answering op 1 (heartbeats are still received and counted)."""
        self._acks_stopped = True

    def resume_acks(self, now: float) -> None:
        """Answer op 1 again."""
        self._acks_stopped = False

    def go_silent(self, now: float) -> None:
        """Turn every open gateway socket into a black hole; its session is detached."""
        for sock in self._gateway_sockets():
            sock.silent = True
            sock.outbox.clear()
            sock.heartbeat_deadline = sock.end_of_life = None
            self._detach(sock, now)

    def drop_connections(self, now: float) -> None:
        """Close every socket abruptly, without close frames."""
        for sock in list(self._sockets.values()):
            self._detach(sock, now)
            self._forget(sock)

    def refuse_connections(self, until: float) -> None:
        """Refuse new connections until ``until``."""
        self._refuse_until = until

    def slow_answers(self, delay: float, until: float) -> None:
        """Until ``until``, hold HTTP answers and Hello back for ``delay`` seconds."""
        self._slow = (delay, until)

    def fail_token_endpoint(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` token calls with HTTP ``status`` and a JSON error."""
        self._api.fail_token_calls(count, status)

    def expire_tokens(self, now: float) -> None:
        """Make every issued token invalid now."""
        self._api.tokens.expire_all()

    def fail_upgrades(self, count: int, status: int = 503) -> None:
        """Refuse the next ``count`` WebSocket upgrades with HTTP ``status``: a gateway node that is down."""
        self._failing_upgrades = (count, status)

    def fail_next_resumes(self, count: int, resumable: bool = True) -> None:
        """Answer the next ``count`` resumes with op 9 ``d=resumable`` instead of replaying."""
        self._failing_resumes = (count, resumable)

    # -- HTTP ---------------------------------------------------------------------------

    def _receive_http(self, sock: _Socket, data: bytes, now: float) -> None:
        sock.http.receive_data(data)
        while self._is_open(sock) and sock.ws is None:
            try:
                request = sock.http.next_request()
            except BadRequest as exc:
                self._answer(sock, exc.status, {"code": exc.status, "message": str(exc)}, now)
                self._close(sock, now)
                return
            if request is None:
                break
            control = self.control(request, now) if self.control is not None else None
            if control is not None:
                self._answer(sock, *control, now)
            elif request.path in GATEWAY_PATHS:
                self._upgrade(sock, request, now)
            elif request.method == "POST" and self.messages.handles(request.path):
                authorised = self._api.authorised(request.headers.get("authorization", ""), now)
                status, body = self.messages.answer(request, authorised, now)
                self._answer(sock, status, body, now)
            else:
                status, body = self._api.answer(request, now)
                self._answer(sock, status, body, now)
        if self._is_open(sock) and sock.http.peer_closed:
            if sock.ws is None:
                self._close(sock, now)
            else:
                self._receive_ws(sock, b"", now)

    def _answer(self, sock: _Socket, status: int, body: object, now: float) -> None:
        trace = (("x-tps-trace-id", f"{self._rng.getrandbits(128):032x}"),)
        self._send(sock, sock.http.respond(status, body, trace), now, slow=True)
        if sock.http.must_close:
            self._close(sock, now)

    def _upgrade(self, sock: _Socket, request: HTTPRequest, now: float) -> None:
        headers = handshake_headers(request)
        if headers is None:
            self._answer(sock, 400, {"code": 400, "message": "expected a WebSocket upgrade"}, now)
            return
        failing, status = self._failing_upgrades
        if failing > 0:
            self._failing_upgrades = (failing - 1, status)
            self._answer(sock, status, {"code": status, "message": "gateway unavailable"}, now)
            self._close(sock, now)
            return
        response, trailing = sock.http.switch_protocols(headers)
        sock.ws = WSServer()
        self.counters.ws_connections += 1
        hello = sock.ws.send_text(dumps({"op": 10, "d": {"heartbeat_interval": self.config.heartbeat_interval_ms}}))
        hello_at = self._send(sock, response + hello, now, slow=True)
        sock.heartbeat_deadline = hello_at + self.config.effective_heartbeat_timeout
        if self.config.session_lifetime is not None:
            sock.end_of_life = hello_at + self.config.session_lifetime
        if trailing:
            self._receive_ws(sock, trailing, now)

    # -- gateway ------------------------------------------------------------------------

    def _receive_ws(self, sock: _Socket, data: bytes, now: float) -> None:
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

    def _receive_payload(self, sock: _Socket, text: str, now: float) -> None:
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

    def _heartbeat(self, sock: _Socket, d: object, now: float) -> None:
        self.counters.heartbeats += 1
        self.heartbeat_times.append(now)
        sock.heartbeat_deadline = now + self.config.effective_heartbeat_timeout
        if sock.session is not None and is_int(d):
            sock.session.saw(d)
        if not self._acks_stopped:
            self._send_text(sock, HEARTBEAT_ACK, now)
            self.counters.heartbeat_acks += 1

    def _identify(self, sock: _Socket, d: object, now: float) -> None:
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

    def _refuse_session(self, sock: _Socket, now: float) -> None:
        self._send_text(sock, dumps({"op": 9, "d": False}), now)
        self._close(sock, now, 4903)

    def _start_session(self, sock: _Socket, shard: tuple[int, int], now: float) -> None:
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

    def _resume(self, sock: _Socket, d: object, now: float) -> None:
        self.counters.resumes += 1
        if self._resumed(sock, d, now):
            self.counters.resumes_ok += 1
        else:
            self.counters.resumes_failed += 1

    def _resumed(self, sock: _Socket, d: object, now: float) -> bool:
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

    def _attach(self, sock: _Socket, session: Session) -> None:
        sock.session = session
        sock.authed = True
        session.conn_id = sock.conn_id
        session.detached_at = None

    def _detach(self, sock: _Socket, now: float) -> None:
        session, sock.session = sock.session, None
        if session is not None:
            session.conn_id = None
            session.detached_at = now
            self.shards.released(session.shard[0], sock.conn_id)

    def _attached_socket(self, session: Session) -> _Socket | None:
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

    def _gateway_sockets(self) -> list[_Socket]:
        return [s for s in self._sockets.values() if s.ws is not None and self._is_open(s) and not s.silent]

    def _is_open(self, sock: _Socket) -> bool:
        return self._sockets.get(sock.conn_id) is sock and not sock.closing

    def _send_text(self, sock: _Socket, text: str, now: float) -> None:
        assert sock.ws is not None
        self._send(sock, sock.ws.send_text(text), now)

    def _send(self, sock: _Socket, data: bytes, now: float, slow: bool = False) -> float:
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

    def _close(self, sock: _Socket, now: float, code: int | None = None, reason: str = "") -> None:
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

    def _forget(self, sock: _Socket) -> None:
        del self._sockets[sock.conn_id]
        self._actions.append(ServerClose(sock.conn_id, sock.close_frame_sent))

    def _count_close(self, code: int) -> None:
        self.counters.close_codes_sent[code] = self.counters.close_codes_sent.get(code, 0) + 1

    def _random_string(self, length: int) -> str:
        return "".join(self._rng.choice(string.ascii_lowercase + string.digits) for _ in range(length))

