"""The fake QQ platform, driven with real client-side h11 and wsproto bytes and virtual time."""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Iterable
from typing import Any

import h11
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, Pong, Request, TextMessage

from qqproto.testing import (
    DispatchGenerator,
    FakeQQPlatform,
    PlatformConfig,
    ServerAction,
    ServerClose,
    ServerSend,
)

GROUP_AND_C2C = 1 << 25
PUBLIC_GUILD = 1 << 30


class Net:
    """Owns a platform and the client ends of its sockets; time moves only via ``advance``."""

    def __init__(self, config: PlatformConfig | None = None, seed: int = 0) -> None:
        self.platform = FakeQQPlatform(config or PlatformConfig(), rng=random.Random(seed))
        self.platform.gateway_url = "wss://127.0.0.1:8443/websocket"
        self.now = 0.0
        self.wire: list[ServerAction] = []
        self.inbox: dict[int, bytearray] = {}
        self.closed: set[int] = set()
        self._ids = itertools.count(1)

    def connect(self) -> int:
        conn_id = next(self._ids)
        assert self.platform.connection_made(conn_id, self.now)
        self.inbox[conn_id] = bytearray()
        return conn_id

    def send(self, conn_id: int, data: bytes) -> None:
        assert conn_id not in self.closed
        self.platform.receive_data(conn_id, data, self.now)
        self.pump()

    def pump(self) -> None:
        for action in self.platform.next_actions():
            self.wire.append(action)
            assert action.conn_id not in self.closed
            if isinstance(action, ServerSend):
                self.inbox[action.conn_id] += action.data
            else:
                self.closed.add(action.conn_id)

    def take(self, conn_id: int) -> bytes:
        data = bytes(self.inbox[conn_id])
        self.inbox[conn_id].clear()
        return data

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every platform timer at its due time."""
        target = self.now + seconds
        while (due := self.platform.next_timer()) is not None and due <= target:
            self.now = max(self.now, due)
            self.platform.handle_timer(self.now)
            self.pump()
        self.now = target

    def http(
        self, method: str, target: str, body: object = None, token: str | None = None, scheme: str = "QQBot"
    ) -> tuple[int, Any]:
        client = HTTPClient(self)
        client.request(method, target, body, token, scheme)
        answer = client.response()
        assert answer is not None
        return answer

    def token(self) -> str:
        status, body = self.http("POST", "/app/getAppAccessToken", self.credentials())
        assert status == 200
        return str(body["access_token"])

    def credentials(self) -> dict[str, str]:
        config = self.platform.config
        return {"appId": config.app_id, "clientSecret": config.client_secret}

    def bot(self, token: str | None = None, intents: int = GROUP_AND_C2C) -> Gateway:
        """A gateway client that has identified and read READY."""
        gateway = Gateway(self)
        gateway.identify(token or self.token(), intents)
        ready = gateway.payloads()
        assert [p.get("t") for p in ready] == ["READY"]
        return gateway


class HTTPClient:
    """One HTTP/1.1 connection, client side."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.conn_id = net.connect()
        self.h11 = h11.Connection(h11.CLIENT)

    def request(
        self, method: str, target: str, body: object = None, token: str | None = None, scheme: str = "QQBot"
    ) -> None:
        payload = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = [("host", "127.0.0.1"), ("content-length", str(len(payload)))]
        if token is not None:
            headers.append(("authorization", f"{scheme} {token}"))
        data = self.h11.send(h11.Request(method=method, target=target, headers=headers)) or b""
        data += self.h11.send(h11.Data(data=payload)) or b""
        data += self.h11.send(h11.EndOfMessage()) or b""
        self.net.send(self.conn_id, data)

    def response(self) -> tuple[int, Any] | None:
        data = self.net.take(self.conn_id)
        if data:
            self.h11.receive_data(data)
        status, body = 0, bytearray()
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.Response):
                status = event.status_code
                assert (b"content-type", b"application/json") in list(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
                    self.h11.start_next_cycle()
                return status, json.loads(body)


class Gateway:
    """One gateway WebSocket, client side; the handshake and Hello are read on creation."""

    def __init__(self, net: Net, path: str = "/websocket", expect_hello: bool = True) -> None:
        self.net = net
        self.conn_id = net.connect()
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.accepted = False
        self.close_code: int | None = None
        self.close_reason = ""
        net.send(self.conn_id, self.ws.send(Request(host="127.0.0.1", target=path)))
        if expect_hello:
            hello = self.payloads()
            assert self.accepted
            assert hello[0]["op"] == 10
            self.hello = hello[0]

    @property
    def tcp_closed(self) -> bool:
        return self.conn_id in self.net.closed

    def payloads(self) -> list[dict[str, Any]]:
        self.net.pump()
        data = self.net.take(self.conn_id)
        if data:
            self.ws.receive_data(data)
        payloads = []
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self.accepted = True
            elif isinstance(event, TextMessage):
                payloads.append(json.loads(event.data))
            elif isinstance(event, CloseConnection):
                self.close_code, self.close_reason = event.code, event.reason or ""
        return payloads

    def send(self, payload: object) -> None:
        self.send_raw(self.ws.send(TextMessage(data=json.dumps(payload))))

    def send_raw(self, data: bytes) -> None:
        self.net.send(self.conn_id, data)

    def identify(self, token: str, intents: int = GROUP_AND_C2C, shard: list[int] | None = None) -> None:
        d: dict[str, object] = {"token": f"QQBot {token}", "intents": intents, "properties": {}}
        if shard is not None:
            d["shard"] = shard
        self.send({"op": 2, "d": d})

    def resume(self, token: str, session_id: str, seq: int | None) -> None:
        self.send({"op": 6, "d": {"token": f"QQBot {token}", "session_id": session_id, "seq": seq}})

    def heartbeat(self, seq: int | None) -> None:
        self.send({"op": 1, "d": seq})

    def expect_close(self, code: int) -> None:
        self.payloads()
        assert self.close_code == code
        assert self.tcp_closed


def seqs(payloads: Iterable[dict[str, Any]]) -> list[int]:
    return [p["s"] for p in payloads]


# -- token endpoint ------------------------------------------------------------------------


def test_token_is_a_string_and_repeats_until_the_overlap() -> None:
    net = Net()
    status, first = net.http("POST", "/app/getAppAccessToken", net.credentials())
    assert status == 200
    assert first["expires_in"] == "7200"
    net.advance(1000.5)
    status, again = net.http("POST", "/app/getAppAccessToken", net.credentials())
    assert again == {"access_token": first["access_token"], "expires_in": "6199"}
    assert net.platform.counters.tokens_issued == 1
    assert net.platform.counters.token_fetches == 2


def test_token_in_overlap_is_new_and_old_stays_valid_until_expiry() -> None:
    net = Net()
    old = net.token()
    net.advance(7200 - 30)
    new = net.token()
    assert new != old
    assert net.http("GET", "/gateway", token=old)[0] == 200
    assert net.http("GET", "/gateway", token=new)[0] == 200
    net.advance(30)
    assert net.http("GET", "/gateway", token=old) == (401, {"code": 11244, "message": "token not exist or expire"})
    assert net.http("GET", "/gateway", token=new)[0] == 200
    net.advance(7200)
    assert net.token() not in (old, new)
    assert net.platform.counters.tokens_issued == 3


@pytest.mark.parametrize(
    "body",
    [
        {"appId": "102000000", "clientSecret": "wrong"},
        {"appId": "1", "clientSecret": "fake-secret-0123456789"},
        b"{not json",
        b"[1, 2]",
        b"\xff\xfe",
    ],
)
def test_bad_credentials_are_401_code_100016(body: object) -> None:
    net = Net()
    assert net.http("POST", "/app/getAppAccessToken", body) == (
        401,
        {"code": 100016, "message": "invalid appid or secret"},
    )
    assert net.platform.counters.token_failures == 1


# -- /gateway and /gateway/bot ------------------------------------------------------------


def test_gateway_needs_a_valid_token() -> None:
    net = Net()
    assert net.http("GET", "/gateway")[0] == 401
    assert net.http("GET", "/gateway", token="forged")[1]["code"] == 11244
    token = net.token()
    assert net.http("GET", "/gateway", token=token) == (200, {"url": "wss://127.0.0.1:8443/websocket"})
    assert net.platform.counters.gateway_calls == 3


def test_gateway_rate_limit_answers_400_100017_and_recovers() -> None:
    net = Net(PlatformConfig(gateway_rate_limit=(2, 60.0)))
    token = net.token()
    assert net.http("GET", "/gateway", token=token)[0] == 200
    net.advance(10)
    assert net.http("GET", "/gateway/bot", token=token)[0] == 200
    limited = (400, {"code": 100017, "message": "接口调用超过频率限制"})
    assert net.http("GET", "/gateway", token=token) == limited
    net.advance(50)
    assert net.http("GET", "/gateway", token=token)[0] == 200
    assert net.http("GET", "/gateway", token=token)[0] == 400
    assert net.platform.counters.gateway_rate_limited == 2


def test_gateway_bot_reports_shards_and_session_start_limit() -> None:
    net = Net(PlatformConfig(session_start_total=5, max_concurrency=2, shards_suggested=3))
    token = net.token()
    status, body = net.http("GET", "/gateway/bot", token=token)
    assert status == 200
    assert body == {
        "url": "wss://127.0.0.1:8443/websocket",
        "shards": 3,
        "session_start_limit": {"total": 5, "remaining": 5, "reset_after": 86400000, "max_concurrency": 2},
    }
    net.bot(token)
    net.advance(3600)
    limit = net.http("GET", "/gateway/bot", token=token)[1]["session_start_limit"]
    assert (limit["remaining"], limit["reset_after"]) == (4, (86400 - 3600) * 1000)


def test_users_me_answers_the_bot_user_to_a_valid_token() -> None:
    net = Net()
    assert net.http("GET", "/users/@me")[1]["code"] == 11244
    status, body = net.http("GET", "/users/@me", token=net.token())
    assert status == 200
    assert (body["id"], body["username"]) == (net.platform.bot_user["id"], net.platform.bot_user["username"])
    assert {"avatar", "union_openid", "union_user_account"} <= body.keys()


def test_session_starts_run_out_and_refill() -> None:
    net = Net(PlatformConfig(session_start_total=1, session_start_window=100.0))
    token = net.token()
    net.bot(token)
    net.advance(5)
    late = Gateway(net)
    late.identify(token)
    assert late.payloads() == [{"op": 9, "d": False}]
    assert late.close_code == 4903
    net.advance(100)
    net.bot(token)


def test_unknown_path_and_wrong_method() -> None:
    net = Net()
    assert net.http("GET", "/nowhere")[0] == 404
    assert net.http("GET", "/app/getAppAccessToken")[0] == 405
    assert net.http("GET", "/websocket")[0] == 400


def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    net = Net()
    client = HTTPClient(net)
    client.request("POST", "/app/getAppAccessToken", net.credentials())
    answer = client.response()
    assert answer is not None and answer[0] == 200
    client.request("GET", "/gateway", token=answer[1]["access_token"])
    assert client.response() == (200, {"url": "wss://127.0.0.1:8443/websocket"})
    assert client.conn_id not in net.closed


# -- gateway -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/websocket", "/websocket/"])
def test_hello_carries_the_configured_interval(path: str) -> None:
    net = Net(PlatformConfig(heartbeat_interval_ms=45000))
    assert Gateway(net, path).hello == {"op": 10, "d": {"heartbeat_interval": 45000}}
    assert net.platform.counters.ws_connections == 1


def test_identify_gets_ready() -> None:
    net = Net()
    gateway = Gateway(net)
    gateway.identify(net.token(), GROUP_AND_C2C | PUBLIC_GUILD, shard=[0, 1])
    (ready,) = gateway.payloads()
    assert ready["op"] == 0 and ready["s"] == 1 and ready["t"] == "READY"
    assert ready["d"]["version"] == 1
    assert ready["d"]["shard"] == [0, 1]
    assert ready["d"]["user"]["bot"] is True
    assert isinstance(ready["d"]["session_id"], str)
    assert net.platform.has_live_gateway(net.now)
    assert net.platform.counters.ready_sent == 1


def test_identify_with_a_bad_token_is_closed_4004() -> None:
    net = Net()
    gateway = Gateway(net)
    gateway.identify("forged")
    gateway.expect_close(4004)
    assert not net.platform.has_live_gateway(net.now)


def test_identify_with_a_bare_token_is_closed_4004() -> None:
    net = Net()
    gateway = Gateway(net)
    gateway.send({"op": 2, "d": {"token": net.token(), "intents": GROUP_AND_C2C}})
    gateway.expect_close(4004)


def test_unauthorised_intents_are_closed_4014() -> None:
    net = Net(PlatformConfig(allowed_intents=PUBLIC_GUILD))
    gateway = Gateway(net)
    gateway.identify(net.token(), PUBLIC_GUILD | GROUP_AND_C2C)
    gateway.expect_close(4014)


def test_unauthorised_intents_in_field_mode_get_op9_then_4903() -> None:
    net = Net(PlatformConfig(allowed_intents=PUBLIC_GUILD, intents_field_behaviour=True))
    gateway = Gateway(net)
    gateway.identify(net.token(), PUBLIC_GUILD | GROUP_AND_C2C)
    assert gateway.payloads() == [{"op": 9, "d": False}]
    assert gateway.close_code == 4903
    assert gateway.close_reason == "create session error"
    assert gateway.tcp_closed


@pytest.mark.parametrize("shard", [[1, 1], [0, 2], [-1, 1], [0, 0]])
def test_bad_shard_is_closed_4010(shard: list[int]) -> None:
    net = Net()
    gateway = Gateway(net)
    gateway.identify(net.token(), shard=shard)
    gateway.expect_close(4010)


def test_sharded_bot_gets_one_session_per_shard() -> None:
    net = Net(PlatformConfig(max_shards=2, max_concurrency=2))
    token = net.token()
    first, second = Gateway(net), Gateway(net)
    first.identify(token, shard=[0, 2])
    second.identify(token, shard=[1, 2])
    assert first.payloads()[0]["d"]["shard"] == [0, 2]
    assert second.payloads()[0]["d"]["shard"] == [1, 2]
    net.platform.push_event("C2C_MESSAGE_CREATE", {"n": 1}, net.now, shard=1)
    assert first.payloads() == []
    assert seqs(second.payloads()) == [2]


def test_heartbeat_is_acked_and_recorded() -> None:
    net = Net()
    gateway = Gateway(net)
    net.advance(5)
    gateway.heartbeat(None)
    assert gateway.payloads() == [{"op": 11}]
    assert net.platform.heartbeat_times == [5.0]
    assert net.platform.counters.heartbeats == net.platform.counters.heartbeat_acks == 1


def test_missing_heartbeat_is_closed_4009_after_the_timeout() -> None:
    net = Net(PlatformConfig(heartbeat_interval_ms=10000))
    gateway = net.bot()
    net.advance(9)
    gateway.heartbeat(1)
    gateway.payloads()
    net.advance(14.9)
    assert not gateway.tcp_closed
    net.advance(0.1)
    gateway.expect_close(4009)
    assert gateway.close_reason == "Session timed out"
    assert net.platform.counters.heartbeat_timeouts == 1


def test_session_lifetime_closes_the_socket_4009_and_resume_works() -> None:
    net = Net(PlatformConfig(session_lifetime=1800.0, heartbeat_timeout=10_000.0))
    token = net.token()
    gateway = net.bot(token)
    session_id = net.platform._current[0].session_id
    net.advance(1799)
    assert not gateway.tcp_closed
    net.advance(1)
    gateway.expect_close(4009)
    again = Gateway(net)
    again.resume(token, session_id, 1)
    assert again.payloads() == [{"op": 0, "s": 1, "t": "RESUMED", "d": ""}]
    assert net.platform.counters.heartbeat_timeouts == 0


def test_resume_replays_missed_events_then_resumed() -> None:
    net = Net()
    token = net.token()
    gateway = net.bot(token)
    session_id = net.platform._current[0].session_id
    for n in range(3):
        net.platform.push_event("C2C_MESSAGE_CREATE", {"n": n}, net.now, event_id=f"E{n}")
    live = gateway.payloads()
    assert seqs(live) == [2, 3, 4]
    assert live[0] == {"op": 0, "s": 2, "t": "C2C_MESSAGE_CREATE", "d": {"n": 0}, "id": "E0"}
    net.platform.connection_lost(gateway.conn_id, net.now)
    assert net.platform.push_event("C2C_MESSAGE_CREATE", {"n": 3}, net.now) == 5
    again = Gateway(net)
    again.resume(token, session_id, 3)
    replay = again.payloads()
    assert replay[:2] == live[2:] + [replay[1]]
    assert seqs(replay[:2]) == [4, 5]
    assert replay[1]["id"].startswith("C2C_MESSAGE_CREATE:")
    assert replay[2] == {"op": 0, "s": 5, "t": "RESUMED", "d": ""}
    counters = net.platform.counters
    assert (counters.events_sent, counters.events_replayed, counters.resumes_ok) == (4, 1, 1)


def test_replayed_bytes_equal_the_first_send() -> None:
    net = Net()
    token = net.token()
    gateway = net.bot(token)
    session_id = net.platform._current[0].session_id
    net.platform.push_event("GROUP_AT_MESSAGE_CREATE", {"content": "你好"}, net.now)
    net.pump()
    first = net.wire[-1]
    assert isinstance(first, ServerSend) and "你好".encode() in first.data
    gateway.send_raw(gateway.ws.send(CloseConnection(code=4000)))
    again = Gateway(net)
    again.resume(token, session_id, 1)
    assert ServerSend(again.conn_id, first.data) in net.wire


def test_resume_of_an_unknown_or_expired_session_gets_op9_false() -> None:
    net = Net(PlatformConfig(resume_window=300.0, heartbeat_timeout=10_000.0))
    token = net.token()
    gateway = Gateway(net)
    gateway.resume(token, "no-such-session", 1)
    assert gateway.payloads() == [{"op": 9, "d": False}]
    assert not gateway.tcp_closed
    bot = net.bot(token)
    session_id = net.platform._current[0].session_id
    net.platform.connection_lost(bot.conn_id, net.now)
    net.advance(300)
    late = Gateway(net)
    late.resume(token, session_id, 1)
    assert late.payloads() == [{"op": 9, "d": False}]
    assert net.platform.counters.resumes_failed == 2
    assert net.platform.push_event("C2C_MESSAGE_CREATE", {}, net.now) is None
    assert net.platform.counters.events_undeliverable == 1


def test_resume_past_the_log_limit_gets_op9_false() -> None:
    net = Net(PlatformConfig(event_log_limit=2))
    token = net.token()
    gateway = net.bot(token)
    session_id = net.platform._current[0].session_id
    net.platform.connection_lost(gateway.conn_id, net.now)
    for _ in range(3):
        net.platform.push_event("C2C_MESSAGE_CREATE", {}, net.now)
    ok = Gateway(net)
    ok.resume(token, session_id, 2)
    assert seqs(ok.payloads()) == [3, 4, 4]
    net.platform.connection_lost(ok.conn_id, net.now)
    late = Gateway(net)
    late.resume(token, session_id, 1)
    assert late.payloads() == [{"op": 9, "d": False}]
    assert net.platform.counters.events_abandoned == 2


def test_resume_from_the_future_is_closed_4007() -> None:
    net = Net()
    token = net.token()
    net.bot(token)
    session_id = net.platform._current[0].session_id
    gateway = Gateway(net)
    gateway.resume(token, session_id, 99)
    gateway.expect_close(4007)


def test_resume_with_a_bad_token_is_closed_4004() -> None:
    net = Net()
    net.bot()
    session_id = net.platform._current[0].session_id
    gateway = Gateway(net)
    gateway.resume("forged", session_id, 1)
    gateway.expect_close(4004)


def test_resume_takes_the_session_from_its_old_socket() -> None:
    net = Net()
    token = net.token()
    old = net.bot(token)
    session_id = net.platform._current[0].session_id
    new = Gateway(net)
    new.resume(token, session_id, 1)
    old.expect_close(4009)
    assert new.payloads()[-1]["t"] == "RESUMED"
    net.platform.push_event("C2C_MESSAGE_CREATE", {}, net.now)
    assert seqs(new.payloads()) == [2]


def test_new_identify_replaces_the_session_and_counts_abandoned_events() -> None:
    net = Net()
    token = net.token()
    old = net.bot(token)
    for n in range(3):
        net.platform.push_event("C2C_MESSAGE_CREATE", {}, net.now, event_id=f"E{n}")
    old.heartbeat(3)
    net.platform.connection_lost(old.conn_id, net.now)
    net.platform.push_event("C2C_MESSAGE_CREATE", {}, net.now, event_id="E3")
    net.advance(5)
    net.bot(token)
    assert net.platform.counters.events_abandoned == 2
    assert net.platform.abandoned_event_ids == {"E2", "E3"}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"op": 3, "d": None}, 4001),
        ({"op": 11}, 4001),
        ({"d": 1}, 4002),
        ({"op": "1"}, 4002),
        ([1, 2], 4002),
        ({"op": 2, "d": "token"}, 4002),
        ({"op": 6, "d": {"token": 1}}, 4002),
    ],
)
def test_bad_payloads_are_closed(frame: object, code: int) -> None:
    net = Net()
    gateway = Gateway(net)
    gateway.send(frame)
    gateway.expect_close(code)
    assert net.platform.counters.close_codes_sent == {code: 1}


def test_invalid_json_and_binary_are_closed_4002() -> None:
    net = Net()
    gateway = Gateway(net)
    gateway.send_raw(gateway.ws.send(TextMessage(data="{op: 1")))
    gateway.expect_close(4002)
    binary = Gateway(net)
    binary.send_raw(binary.ws.send(BytesMessage(data=b'{"op":1}')))
    binary.expect_close(4002)


@pytest.mark.parametrize(
    ("d", "code"),
    [
        ({"intents": "512"}, 4013),
        ({"intents": True}, 4013),
        ({"intents": 1, "shard": "0,1"}, 4010),
        ({"intents": 1, "shard": [0, 1, 2]}, 4010),
    ],
)
def test_bad_identify_fields_are_closed(d: dict[str, object], code: int) -> None:
    net = Net()
    gateway = Gateway(net)
    gateway.send({"op": 2, "d": {"token": f"QQBot {net.token()}", **d}})
    gateway.expect_close(code)


def test_identify_twice_is_closed_4005() -> None:
    net = Net()
    token = net.token()
    gateway = net.bot(token)
    gateway.identify(token)
    gateway.expect_close(4005)


def test_client_eof_detaches_the_session() -> None:
    net = Net()
    gateway = net.bot()
    net.send(gateway.conn_id, b"")
    assert gateway.tcp_closed
    assert not net.platform.has_live_gateway(net.now)
    assert net.platform.push_event("C2C_MESSAGE_CREATE", {}, net.now) == 2


def test_connection_ids_must_be_unique() -> None:
    net = Net()
    conn_id = net.connect()
    with pytest.raises(ValueError):
        net.platform.connection_made(conn_id, net.now)


def test_client_close_frame_is_answered() -> None:
    net = Net()
    gateway = net.bot()
    gateway.send_raw(gateway.ws.send(CloseConnection(code=1000)))
    gateway.payloads()
    assert gateway.close_code == 1000
    assert gateway.tcp_closed
    assert not net.platform.has_live_gateway(net.now)


def test_ping_fragments_and_oversized_messages() -> None:
    net = Net()
    gateway = Gateway(net)
    gateway.send_raw(gateway.ws.send(Ping(payload=b"x")))
    gateway.send_raw(gateway.ws.send(TextMessage(data='{"op":1,', message_finished=False)))
    gateway.send_raw(gateway.ws.send(TextMessage(data='"d":null}', message_finished=True)))
    gateway.ws.receive_data(net.take(gateway.conn_id))
    assert [type(e) for e in gateway.ws.events()] == [Pong, TextMessage]
    gateway.send_raw(gateway.ws.send(TextMessage(data="x" * (1024 * 1024 + 1))))
    gateway.expect_close(1009)


# -- faults --------------------------------------------------------------------------------


def test_send_reconnect_sends_op7() -> None:
    net = Net()
    gateway = net.bot()
    net.platform.send_reconnect(net.now)
    net.pump()
    assert gateway.payloads() == [{"op": 7}]


@pytest.mark.parametrize("resumable", [True, False])
def test_invalidate_session(resumable: bool) -> None:
    net = Net()
    token = net.token()
    gateway = net.bot(token)
    session_id = net.platform._current[0].session_id
    net.platform.push_event("C2C_MESSAGE_CREATE", {}, net.now)
    net.platform.invalidate_session(net.now, resumable=resumable)
    net.pump()
    assert gateway.payloads()[-1] == {"op": 9, "d": resumable}
    assert not net.platform.has_live_gateway(net.now)
    again = Gateway(net)
    again.resume(token, session_id, 2)
    assert again.payloads()[-1] == ({"op": 0, "s": 2, "t": "RESUMED", "d": ""} if resumable else {"op": 9, "d": False})
    assert net.platform.counters.events_abandoned == (0 if resumable else 1)


def test_identify_again_on_the_same_socket_after_op9() -> None:
    net = Net()
    token = net.token()
    gateway = net.bot(token)
    net.platform.invalidate_session(net.now)
    net.pump()
    gateway.payloads()
    net.advance(5)
    gateway.identify(token)
    assert gateway.payloads()[0]["t"] == "READY"


@pytest.mark.parametrize(("code", "reason"), [(4009, "Session timed out"), (4914, "bot offline, sandbox only")])
def test_close_gateway_with_any_code(code: int, reason: str) -> None:
    net = Net()
    gateway = net.bot()
    net.platform.close_gateway(code, net.now)
    net.pump()
    gateway.expect_close(code)
    assert gateway.close_reason == reason
    net.platform.close_gateway(4900, net.now, reason="custom")
    assert net.platform.counters.close_codes_sent == {code: 1}


def test_stop_and_resume_acks() -> None:
    net = Net()
    gateway = net.bot()
    net.platform.stop_acks(net.now)
    gateway.heartbeat(1)
    assert gateway.payloads() == []
    net.advance(40)
    gateway.heartbeat(1)
    net.advance(40)
    assert not gateway.tcp_closed
    net.platform.resume_acks(net.now)
    gateway.heartbeat(1)
    assert gateway.payloads() == [{"op": 11}]
    assert net.platform.counters.heartbeats == 3
    assert net.platform.counters.heartbeat_acks == 1


def test_go_silent_keeps_the_socket_but_logs_events_for_resume() -> None:
    net = Net()
    token = net.token()
    gateway = net.bot(token)
    session_id = net.platform._current[0].session_id
    net.platform.go_silent(net.now)
    assert not net.platform.has_live_gateway(net.now)
    gateway.heartbeat(1)
    net.platform.push_event("C2C_MESSAGE_CREATE", {}, net.now)
    net.advance(299)
    assert gateway.payloads() == []
    assert not gateway.tcp_closed
    net.send(gateway.conn_id, b"")
    assert not gateway.tcp_closed
    again = Gateway(net)
    again.resume(token, session_id, 1)
    assert seqs(again.payloads()) == [2, 2]
    net.platform.drop_connections(net.now)
    net.pump()
    assert gateway.tcp_closed


def test_drop_connections_closes_everything_without_close_frames() -> None:
    net = Net()
    gateway = net.bot()
    pending = HTTPClient(net)
    net.platform.drop_connections(net.now)
    net.pump()
    assert gateway.tcp_closed and pending.conn_id in net.closed
    assert gateway.payloads() == [] and gateway.close_code is None
    assert not net.platform.has_live_gateway(net.now)


def test_refuse_connections_until() -> None:
    net = Net()
    net.platform.refuse_connections(until=10.0)
    assert not net.platform.connection_made(100, 9.99)
    assert net.platform.connection_made(101, 10.0)
    assert net.platform.counters.refused_connections == 1


def test_slow_answers_hold_http_and_hello() -> None:
    net = Net()
    token = net.token()
    net.platform.slow_answers(delay=3.0, until=10.0)
    client = HTTPClient(net)
    client.request("GET", "/gateway", token=token)
    assert client.response() is None
    net.advance(2.9)
    assert client.response() is None
    net.advance(0.1)
    assert client.response() == (200, {"url": "wss://127.0.0.1:8443/websocket"})
    gateway = Gateway(net, expect_hello=False)
    assert gateway.payloads() == []
    net.advance(3)
    assert gateway.payloads()[0]["op"] == 10
    net.advance(10)
    assert net.http("GET", "/gateway", token=token)[0] == 200


def test_slow_answers_hold_answers_that_end_the_connection_too() -> None:
    net = Net()
    net.platform.slow_answers(delay=2.0, until=10.0)
    client = HTTPClient(net)
    request = client.h11.send(
        h11.Request(method="GET", target="/nowhere", headers=[("host", "x"), ("connection", "close")])
    )
    net.send(client.conn_id, (request or b"") + (client.h11.send(h11.EndOfMessage()) or b""))
    assert client.response() is None and client.conn_id not in net.closed
    gateway = Gateway(net, expect_hello=False)
    net.platform.close_gateway(4009, net.now)
    net.pump()
    assert net.inbox[gateway.conn_id] == b"" and gateway.conn_id not in net.closed
    net.advance(2)
    assert client.response() == (404, {"code": 404, "message": "not found"})
    assert client.conn_id in net.closed
    assert gateway.payloads()[0]["op"] == 10
    assert gateway.close_code == 4009 and gateway.tcp_closed


def test_fail_token_endpoint_then_recover() -> None:
    net = Net()
    net.platform.fail_token_endpoint(2, status=500)
    for _ in range(2):
        status, body = net.http("POST", "/app/getAppAccessToken", net.credentials())
        assert status == 500 and body["code"] == 500
    assert net.http("POST", "/app/getAppAccessToken", net.credentials())[0] == 200
    assert net.platform.counters.token_failures == 2


def test_expire_tokens_invalidates_every_token() -> None:
    net = Net()
    token = net.token()
    net.platform.expire_tokens(net.now)
    assert net.http("GET", "/gateway", token=token)[0] == 401
    gateway = Gateway(net)
    gateway.identify(token)
    gateway.expect_close(4004)
    assert net.token() != token


@pytest.mark.parametrize("resumable", [True, False])
def test_fail_next_resumes(resumable: bool) -> None:
    net = Net()
    token = net.token()
    gateway = net.bot(token)
    session_id = net.platform._current[0].session_id
    net.platform.connection_lost(gateway.conn_id, net.now)
    net.platform.fail_next_resumes(1, resumable=resumable)
    first = Gateway(net)
    first.resume(token, session_id, 1)
    assert first.payloads() == [{"op": 9, "d": resumable}]
    second = Gateway(net)
    second.resume(token, session_id, 1)
    assert second.payloads()[-1]["t" if resumable else "d"] == ("RESUMED" if resumable else False)


def test_failed_resume_that_drops_the_session_closes_its_socket_4006() -> None:
    net = Net()
    token = net.token()
    attached = net.bot(token)
    session_id = net.platform._current[0].session_id
    net.platform.fail_next_resumes(1, resumable=False)
    other = Gateway(net)
    other.resume(token, session_id, 1)
    assert other.payloads() == [{"op": 9, "d": False}]
    attached.expect_close(4006)


# -- robustness and determinism ------------------------------------------------------------


def test_garbage_never_raises() -> None:
    rng = random.Random(7)
    net = Net(PlatformConfig(identify_window=0.0))
    token = net.token()
    prefixes = [
        b"",
        b"GET /websocket HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
        b"sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        b"POST /app/getAppAccessToken HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\n",
        b"GET /gateway HTTP/1.1\r\n\r\n",
    ]
    for _ in range(300):
        conn_id = net.connect()
        data = rng.choice(prefixes) + rng.randbytes(rng.randint(0, 300))
        for start in range(0, len(data), 17):
            if conn_id in net.closed:
                break
            net.send(conn_id, data[start : start + 17])
        if conn_id not in net.closed:
            net.send(conn_id, b"")
        net.advance(rng.random())
    gateway = Gateway(net)
    for _ in range(200):
        frame = json.dumps(rng.choice([{"op": 1, "d": "x"}, {"op": 6, "d": {}}, {"op": 2, "d": {"token": 1}}]))
        payload = gateway.ws.send(TextMessage(data=frame))
        if gateway.tcp_closed:
            gateway = Gateway(net)
            gateway.identify(token)
            gateway.payloads()
        net.send(gateway.conn_id, payload)
    net.platform.receive_data(999_999, b"junk", net.now)
    net.platform.connection_lost(999_999, net.now)


def scripted_run(seed: int) -> list[ServerAction]:
    net = Net(PlatformConfig(session_lifetime=100.0), seed=seed)
    token = net.token()
    gateway = net.bot(token)
    session_id = net.platform._current[0].session_id
    generator = DispatchGenerator(random.Random(seed))
    for step in range(20):
        net.platform.push_event(*generator.next(net.now)[:2], net.now)
        if not gateway.tcp_closed:
            gateway.heartbeat(step + 1)
        net.advance(10)
    again = Gateway(net)
    again.resume(token, session_id, 5)
    assert again.payloads()[-1]["t"] == "RESUMED"
    return net.wire


def test_same_seed_gives_the_same_bytes() -> None:
    def normalised(wire: list[ServerAction]) -> list[object]:
        """The wire, minus the accept token that depends on the client's random key."""
        return [re.sub(rb"sec-websocket-accept: \S+", b"", a.data) if isinstance(a, ServerSend) else a for a in wire]

    assert normalised(scripted_run(3)) == normalised(scripted_run(3))
    assert normalised(scripted_run(3)) != normalised(scripted_run(4))


def test_dispatch_generator_shapes_and_sizes() -> None:
    generator = DispatchGenerator(random.Random(1))
    events = [generator.next(float(n)) for n in range(2000)]
    sizes = [len(json.dumps(d, ensure_ascii=False).encode()) for _, d, _ in events]
    assert sum(512 <= s <= 2200 for s in sizes) > 0.9 * len(sizes)
    assert 0.01 < sum(s >= 10240 for s in sizes) / len(sizes) < 0.06
    assert any("attachments" in d for _, d, _ in events)
    for event_type, d, event_id in events[:50]:
        assert event_id.startswith(event_type + ":")
        assert str(d["id"]).startswith("ROBOT1.0_")
        author = d["author"]
        assert isinstance(author, dict)
        if event_type == "GROUP_AT_MESSAGE_CREATE":
            assert "member_openid" in author and "group_openid" in d
        else:
            assert event_type == "C2C_MESSAGE_CREATE" and "user_openid" in author
    assert events[0][1]["timestamp"] == "2025-01-01T00:00:00+08:00"
    assert DispatchGenerator(random.Random(1)).next(0.0) == events[0]


def test_counters_to_dict_is_json_ready() -> None:
    net = Net()
    gateway = Gateway(net)
    gateway.send({"op": 5})
    counters = net.platform.counters.to_dict()
    assert counters["close_codes_sent"] == {4001: 1}
    assert json.loads(json.dumps(counters))["ws_connections"] == 1
    assert isinstance(ServerClose(1), ServerClose)
