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
| ``GET /users/@me`` → the bot's ``id``, ``username``, ``avatar``, ``union_openid``, ``union_user_account`` | DOC ``openapi/user/me.md`` (not in docs/protocol.md) |
| ``GET /gateway`` → ``{"url"}``; ``GET /gateway/bot`` → ``url``, ``shards``, ``session_start_limit`` (``total``, ``remaining``, ``reset_after`` in ms, ``max_concurrency``) | §8.1 |
| both need ``Authorization: QQBot <valid token>``, else 401 ``{"code": 11244, "message": "token not exist or expire"}`` | §7.3, §9.4 |
| past ``gateway_rate_limit`` → HTTP 400 ``{"code": 100017, "message": "接口调用超过频率限制"}`` | §8.4 (UNCONFIRMED) |
| unknown path → 404 JSON, wrong method → 405 JSON | §9.1 |
| ``/websocket`` (or ``/websocket/``) upgrades; Hello ``{"op": 10, "d": {"heartbeat_interval": ms}}`` comes first | §1, §3.1, §4.3 |
| Identify needs ``token`` = ``QQBot <valid token>``, else close 4004 | §3.1, §5.2 |
| intents outside ``allowed_intents`` → close 4014; with ``intents_field_behaviour``, op 9 ``false`` then close 4903 "create session error" | §5.1, §6, §14.9 |
| ``shard`` ``[id, count]`` needs ``0 <= id < count <= max_shards`` (default: ``/gateway/bot``'s ``shards``), else close 4010 | §3.1, §5.1, §8.1 |
| one Identify per ``identify_window`` (5 s) per bucket ``shard_id % max_concurrency``; another → close 4008 "identify rate limit" | §8.1 (the refusal is UNCONFIRMED) |
| ``shards.peak_live``: per shard, the most sockets serving it at once (``reset_peaks`` restarts it); ``shards.identify_times``: when each shard identified; :meth:`shard_report` | (bookkeeping) |
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
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._actions import ServerAction, ServerSend
from ._api import API
from ._config import PlatformConfig
from ._counters import PlatformCounters
from ._gateway_protocol import CLOSE_REASONS, GatewayProtocol
from ._gateway_protocol import Socket as _Socket
from ._http_server import BadRequest, HTTPRequest
from ._json import dumps
from ._messages import SCENE_OF_EVENT, MessageDesk
from ._sessions import Session
from ._shards import ShardRules
from ._ws_server import WSServer, handshake_headers

if TYPE_CHECKING:
    from ._push import WebhookPusher

__all__ = ["CLOSE_REASONS", "FakeQQPlatform"]

GATEWAY_PATHS = ("/websocket", "/websocket/")
RECONNECT = dumps({"op": 7})


class FakeQQPlatform(GatewayProtocol):
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

    def shard_report(self) -> dict[str, object]:
        """Per-shard figures with each shard's current session, as JSON-ready data (:meth:`ShardRules.report`)."""
        return self.shards.report(self._current)

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
