"""Random interleavings of platform faults, garbage, time and socket trouble never break the connection's promises.

A Hypothesis state machine wires one ``QQGatewayConnection`` to a ``FakeQQPlatform`` through an
in-memory network whose every delivery is a rule, and checks after each step what the
connection promises: one gateway socket at a time, no needless Identify, bounded reconnect
delays, timers never in the past, heartbeats on time, each dispatch once and in order, and
never stuck.
"""

from __future__ import annotations

import json
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from qqproto import (
    Action,
    CloseSocket,
    Dispatch,
    Fatal,
    GatewayConfig,
    OpenSocket,
    QQGatewayConnection,
    Ready,
    ReconnectScheduled,
    Resumed,
    SendData,
    State,
    TimerLate,
)
from qqproto.testing import FakeQQPlatform, PlatformConfig, ServerClose, ServerSend

GATEWAY_HOST = "gateway.test"
EPSILON = 1e-6
# Close codes after which the client may forget its session and identify (docs/protocol.md §5.3).
DOCUMENTED_CODES = set(range(4000, 4015)) | set(range(4900, 4916))
IDENTIFY_CODES = {4003, 4005, 4006, 4007, *range(4900, 4914)}
# Mostly codes that keep the client going; the fatal ones are rare so that runs last.
CLOSE_CODES = [1000, 1001, 1011, 3000, 4000, 4003, 4004, 4006, 4007, 4008, 4009, 4009, 4900, 4902, 4903, 4999]
FATAL_CODES = [4001, 4010, 4014, 4914]
LIVE = (State.IDENTIFYING, State.RESUMING, State.CONNECTED)
# What can go wrong on the platform's side; each takes a size (a count) and a duration.
FAULTS: dict[str, Callable[[FakeQQPlatform, float, int, float], None]] = {
    "op 7": lambda p, now, size, seconds: p.send_reconnect(now),
    "op 9": lambda p, now, size, seconds: p.invalidate_session(now, resumable=False),
    "op 9 resumable": lambda p, now, size, seconds: p.invalidate_session(now, resumable=True),
    "acks stop": lambda p, now, size, seconds: p.stop_acks(now),
    "acks resume": lambda p, now, size, seconds: p.resume_acks(now),
    "silence": lambda p, now, size, seconds: p.go_silent(now),
    "drop": lambda p, now, size, seconds: p.drop_connections(now),
    "refuse": lambda p, now, size, seconds: p.refuse_connections(now + seconds),
    "slow": lambda p, now, size, seconds: p.slow_answers(seconds / 15, now + seconds),
    "token 5xx": lambda p, now, size, seconds: p.fail_token_endpoint(size, 503),
    "token 429": lambda p, now, size, seconds: p.fail_token_endpoint(size, 429),
    "tokens expire": lambda p, now, size, seconds: p.expire_tokens(now),
    "upgrades fail": lambda p, now, size, seconds: p.fail_upgrades(size),
    "resumes fail": lambda p, now, size, seconds: p.fail_next_resumes(size, resumable=size % 2 == 0),
}


def is_identify_code(code: int) -> bool:
    return code in IDENTIFY_CODES or (code >= 4000 and code not in DOCUMENTED_CODES)


class FrameReader:
    """One direction of a gateway socket as its peer reads it: an HTTP head, then whole WebSocket messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._in_head = True
        self._parts: list[bytes] = []

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """(opcode, payload) of each complete message or control frame in ``data``."""
        buf = self._buffer
        buf += data
        if self._in_head:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return []
            del buf[: end + 4]
            self._in_head = False
        messages = []
        while len(buf) >= 2:
            length, pos = buf[1] & 0x7F, 2
            if length >= 126:
                pos += 2 if length == 126 else 8
                length = int.from_bytes(buf[2:pos], "big")
            mask = b""
            if buf[1] & 0x80:
                mask, pos = bytes(buf[pos : pos + 4]), pos + 4
            if len(buf) < pos + length:
                break
            payload = bytes(buf[pos : pos + length])
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode, fin = buf[0] & 0x0F, buf[0] & 0x80
            del buf[: pos + length]
            if opcode >= 8:
                messages.append((opcode, payload))
                continue
            self._parts.append(payload)
            if fin:
                messages.append((1, b"".join(self._parts)))
                self._parts.clear()
        return messages


def server_frame(payload: bytes) -> bytes:
    """One unmasked text frame, as the platform sends it."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size <= 0xFFFF:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


def gateway_payload(payload: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):
        return {}
    return obj if isinstance(obj, dict) else {}


@dataclass
class Link:
    """One socket the client asked for, and the platform connection behind it once accepted."""

    sock_id: int
    gateway: bool
    conn_id: int | None = None
    opened: bool = False
    client_open: bool = True
    to_client: deque[bytes] = field(default_factory=deque)
    to_platform: deque[bytes] = field(default_factory=deque)
    sent: FrameReader = field(default_factory=FrameReader)
    received: FrameReader = field(default_factory=FrameReader)
    tainted: bool = False
    interval: float | None = None
    beat_base: float | None = None


class GatewayMachine(RuleBasedStateMachine):
    """A client and the fake platform on one virtual clock; every rule is one thing that can happen."""

    @initialize(
        seed=st.integers(0, 2**32 - 1),
        hello_ms=st.sampled_from([41250, 30000, 5000]),
        session_lifetime=st.sampled_from([None, 1800.0, 120.0]),
        token_ttl=st.sampled_from([7200, 300]),
        rate_limit=st.sampled_from([None, (2, 60.0)]),
        session_starts=st.sampled_from([1000, 3]),
        attempts=st.sampled_from([None, None, None, 8]),
    )
    def wire_up(
        self,
        seed: int,
        hello_ms: int,
        session_lifetime: float | None,
        token_ttl: int,
        rate_limit: tuple[int, float] | None,
        session_starts: int,
        attempts: int | None,
    ) -> None:
        self.platform_config = PlatformConfig(
            heartbeat_interval_ms=hello_ms,
            session_lifetime=session_lifetime,
            resume_window=120.0,
            token_ttl=token_ttl,
            gateway_rate_limit=rate_limit,
            session_start_total=session_starts,
        )
        self.platform = FakeQQPlatform(self.platform_config, rng=random.Random(seed))
        self.platform.gateway_url = f"wss://{GATEWAY_HOST}/websocket"
        self.config = GatewayConfig(
            app_id=self.platform_config.app_id,
            client_secret=self.platform_config.client_secret,
            api_base="https://api.test",
            token_url="https://bots.test/app/getAppAccessToken",
            max_reconnect_attempts=attempts,
        )
        self.client = QQGatewayConnection(self.config, random.Random(seed + 1))
        self.now = 1000.0
        self.links: dict[int, Link] = {}
        self.next_conn_id = 500
        self.steps = 0
        self.late_at = -math.inf
        self.closed_by_caller = False
        self.fatal: Fatal | None = None
        self.events_pushed = 0
        # What the application saw.
        self.app_session: str | None = None
        self.app_seq: int | None = None
        self.delivered: set[str | None] = set()
        # What the wire shows about the session: held since READY; given up only for a documented reason.
        self.session_held = False
        self.may_identify = True
        self.resumes_in_a_row = 0
        self.session_dispatches: list[bytes] = []
        self.timer_lates: list[float] = []
        self.client.start(self.now)
        self.pump()

    # ------------------------------------------------------------------ the network

    def pump(self) -> None:
        """Carry out what the client and the platform asked for, queueing bytes on the links."""
        while True:
            actions = self.client.next_actions()
            for action in actions:
                self.client_did(action)
            server_actions = self.platform.next_actions()
            for server_action in server_actions:
                link = self.link_of_conn(server_action.conn_id)
                if link is None:
                    continue
                if isinstance(server_action, ServerClose):
                    link.conn_id = None
                if link.client_open:
                    link.to_client.append(server_action.data if isinstance(server_action, ServerSend) else b"")
            if not actions and not server_actions:
                return

    def link_of_conn(self, conn_id: int) -> Link | None:
        for link in self.links.values():
            if link.conn_id == conn_id:
                return link
        return None

    def client_did(self, action: Action) -> None:
        if isinstance(action, OpenSocket):
            self.links[action.sock_id] = Link(action.sock_id, action.host == GATEWAY_HOST)
            open_gateways = [link for link in self.links.values() if link.gateway and link.client_open]
            assert len(open_gateways) <= 1, "a second gateway socket while one is open"
        elif isinstance(action, SendData):
            link = self.links[action.sock_id]
            assert link.client_open and link.opened, "data for a socket that is not open"
            link.to_platform.append(action.data)
            if link.gateway:
                for opcode, payload in link.sent.feed(action.data):
                    if opcode == 1:
                        self.client_sent(link, gateway_payload(payload).get("op"))
        elif isinstance(action, CloseSocket):
            link = self.links[action.sock_id]
            assert link.client_open, "a socket closed twice"
            link.client_open = False
            link.to_client.clear()
            if link.conn_id is not None:
                link.to_platform.append(b"")
        elif isinstance(action, ReconnectScheduled):
            self.check_delay(action)
        elif isinstance(action, Ready):
            self.app_session, self.app_seq = action.session_id, None
        elif isinstance(action, Resumed):
            assert action.session_id == self.app_session, "resumed a session the application never had"
        elif isinstance(action, Dispatch):
            assert action.event_id not in self.delivered, f"{action.event_id} reached the application twice"
            assert self.app_seq is None or action.seq > self.app_seq, "dispatches out of order"
            self.delivered.add(action.event_id)
            self.app_seq = action.seq
        elif isinstance(action, Fatal):
            assert action.reason, "Fatal without a reason"
            self.fatal = action
        elif isinstance(action, TimerLate):
            self.timer_lates.append(action.lag)

    def client_sent(self, link: Link, op: object) -> None:
        """Check what the client sent on a gateway socket against what it had been told."""
        if op == 1 and not link.tainted:
            assert link.beat_base is not None, "a heartbeat before Hello"
            if self.late_at <= link.beat_base:
                assert link.interval is not None
                assert self.now - link.beat_base <= link.interval + EPSILON, "heartbeats too far apart"
            link.beat_base = self.now
        elif op == 6:
            self.resumes_in_a_row += 1
        elif op == 2:
            failed_resumes = self.resumes_in_a_row >= self.config.resume_failure_limit
            assert not self.session_held or self.may_identify or failed_resumes, "identify while a session is held"
            self.session_held, self.resumes_in_a_row = False, 0
            self.session_dispatches.clear()

    def client_received(self, link: Link, data: bytes) -> None:
        """Note what the platform told the client, in the order the client reads it."""
        for opcode, payload in link.received.feed(data):
            if opcode == 8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                if code is not None and is_identify_code(code):
                    self.may_identify = True
                continue
            if opcode != 1:
                continue
            message = gateway_payload(payload)
            op, d = message.get("op"), message.get("d")
            if op == 10 and link.interval is None and isinstance(d, dict):
                link.interval = d["heartbeat_interval"] / 1000 * self.config.heartbeat_ratio
                link.beat_base = self.now
            elif op == 9 and d is not True:
                self.may_identify = True
            elif op == 0 and message.get("t") == "READY":
                self.session_held, self.may_identify, self.resumes_in_a_row = True, False, 0
                self.session_dispatches.clear()
            elif op == 0 and message.get("t") == "RESUMED":
                self.resumes_in_a_row = 0
            elif op == 0:
                self.session_dispatches.append(payload)

    def check_delay(self, action: ReconnectScheduled) -> None:
        config, delay = self.config, action.delay
        assert math.isfinite(delay) and delay >= 0, f"delay {delay}"
        within_backoff = delay <= max(config.backoff_cap, config.invalid_session_delay[1])
        cooling_down = config.cooldown <= delay <= config.cooldown_cap
        session_limit = action.cause == "session_limit" and delay <= self.platform_config.session_start_window
        assert within_backoff or cooling_down or session_limit, f"{action.cause} delay {delay} out of bounds"

    def deliver_to_client(self, link: Link, cut: int | None = None) -> None:
        data = link.to_client.popleft()
        if cut is not None and 0 < cut < len(data):
            data, rest = data[:cut], data[cut:]
            link.to_client.appendleft(rest)
        if link.gateway and not link.tainted:
            self.client_received(link, data)
        self.client.receive_data(link.sock_id, data, self.now)
        self.pump()

    def deliver_to_platform(self, link: Link) -> None:
        data = link.to_platform.popleft()
        if link.conn_id is not None:
            self.platform.receive_data(link.conn_id, data, self.now)
        self.pump()

    def accept(self, link: Link) -> None:
        link.opened = True
        self.next_conn_id += 1
        if self.platform.connection_made(self.next_conn_id, self.now):
            link.conn_id = self.next_conn_id
            self.client.socket_opened(link.sock_id, self.now)
        else:
            self.client.socket_failed(link.sock_id, "connection refused", self.now)
        self.pump()

    def settle(self) -> None:
        """A fast network: open, deliver and answer everything until nothing moves."""
        for _ in range(10_000):
            pending = [link for link in self.links.values() if link.client_open and not link.opened]
            busy = [link for link in self.links.values() if link.to_client or link.to_platform]
            if not pending and not busy:
                return
            for link in pending:
                if link.client_open and not link.opened:
                    self.accept(link)
            for link in busy:
                while link.to_platform:
                    self.deliver_to_platform(link)
                while link.to_client:
                    self.deliver_to_client(link)
        raise AssertionError("the network never settled")

    def run_timers_until(self, end: float, settle: bool) -> None:
        """Move time to ``end``, serving every client and platform timer on time."""
        for _ in range(100_000):
            due = [t for t in (self.client.next_timer(), self.platform.next_timer()) if t is not None]
            if not due or min(due) > end:
                self.now = end
                return
            self.now = max(self.now, min(due))
            self.serve_timers()
            if settle:
                self.settle()
        raise AssertionError("timers kept falling due")

    def serve_timers(self) -> None:
        client_due = self.client.next_timer()
        if client_due is not None and client_due <= self.now:
            self.client.handle_timer(self.now)
            after = self.client.next_timer()
            assert after is None or after > self.now, "next_timer() in the past after handle_timer"
        platform_due = self.platform.next_timer()
        if platform_due is not None and platform_due <= self.now:
            self.platform.handle_timer(self.now)
        self.pump()

    # ------------------------------------------------------------------ rules: network and time

    def pick(self, links: list[Link], index: int) -> Link:
        return links[index % len(links)]

    def pending_links(self) -> list[Link]:
        return [link for link in self.links.values() if link.client_open and not link.opened]

    def live_links(self) -> list[Link]:
        return [link for link in self.links.values() if link.client_open and link.opened]

    @precondition(lambda self: self.pending_links())
    @rule(index=st.integers(0, 100))
    def socket_connects(self, index: int) -> None:
        self.accept(self.pick(self.pending_links(), index))

    @precondition(lambda self: self.pending_links())
    @rule(index=st.integers(0, 100))
    def connection_refused(self, index: int) -> None:
        link = self.pick(self.pending_links(), index)
        link.opened = True
        self.client.socket_failed(link.sock_id, "connection refused", self.now)
        self.pump()

    @precondition(lambda self: any(link.to_client for link in self.links.values()))
    @rule(index=st.integers(0, 100), cut=st.none() | st.integers(1, 200))
    def bytes_reach_the_client(self, index: int, cut: int | None) -> None:
        self.deliver_to_client(self.pick([link for link in self.links.values() if link.to_client], index), cut)

    @precondition(lambda self: any(link.to_platform for link in self.links.values()))
    @rule(index=st.integers(0, 100))
    def bytes_reach_the_platform(self, index: int) -> None:
        self.deliver_to_platform(self.pick([link for link in self.links.values() if link.to_platform], index))

    @rule()
    def network_settles(self) -> None:
        self.settle()

    @rule(
        seconds=st.one_of(st.floats(0.001, 60), st.floats(60, 7200)),
        settle=st.sampled_from([True, True, False]),
        events=st.integers(0, 3),
    )
    def time_passes(self, seconds: float, settle: bool, events: int) -> None:
        """Time moves on with every timer served on time; the platform has ``events`` events along the way."""
        if settle:
            self.settle()
        for _ in range(events):
            self.run_timers_until(self.now + seconds / (events + 1), settle)
            self.push_events(1)
            if settle:
                self.settle()
        self.run_timers_until(self.now + seconds / (events + 1), settle)

    @rule(seconds=st.one_of(st.floats(1, 120), st.floats(1, 120), st.floats(120, 7200), st.floats(7200, 3 * 86400)))
    def host_loop_blocked(self, seconds: float) -> None:
        """The host did nothing for a while, then served the timer once, late: TimerLate, and a beat at once."""
        self.platform_catches_up(seconds)
        due = self.client.next_timer()
        beating = self.beating_link() if self.client.state is State.CONNECTED else None
        self.now += seconds
        self.late_at = self.now
        self.timer_lates.clear()
        self.client.handle_timer(self.now)
        after = self.client.next_timer()
        assert after is None or after > self.now, "next_timer() in the past after a late handle_timer"
        self.pump()
        if due is None or self.now - due <= self.config.late_timer_threshold:
            return
        assert self.timer_lates == [self.now - due], "a late timer was not reported once, with its lag"
        if beating is not None and beating.beat_base is not None and beating.interval is not None:
            if beating.beat_base + beating.interval <= self.now:
                assert beating.client_open and beating.beat_base == self.now, "a late timer did not beat at once"

    def platform_catches_up(self, seconds: float) -> None:
        """The platform's timers are served on time while the client's host is blocked."""
        end = self.now + seconds
        for _ in range(100_000):
            due = self.platform.next_timer()
            if due is None or due > end:
                return
            self.platform.handle_timer(due)
            self.pump()
        raise AssertionError("the platform's timers kept falling due")

    @precondition(lambda self: self.live_links())
    @rule(index=st.integers(0, 100), data=st.binary(min_size=1, max_size=64))
    def garbage_arrives(self, index: int, data: bytes) -> None:
        link = self.pick(self.live_links(), index)
        if link.gateway:
            link.tainted = True
            self.may_identify = True  # what garbage makes the client read is not modelled
            self.session_dispatches.clear()
        self.client.receive_data(link.sock_id, data, self.now)
        self.pump()

    @precondition(lambda self: self.live_links())
    @rule(index=st.integers(0, 100), eof=st.booleans())
    def socket_breaks(self, index: int, eof: bool) -> None:
        link = self.pick(self.live_links(), index)
        link.to_client.clear()
        if link.conn_id is not None:
            self.platform.connection_lost(link.conn_id, self.now)
            link.conn_id = None
        if eof:
            self.client.receive_data(link.sock_id, b"", self.now)
        else:
            self.client.socket_failed(link.sock_id, "connection reset by peer", self.now)
        self.pump()

    @precondition(lambda self: self.steps >= 40)
    @rule()
    def application_closes(self) -> None:
        self.closed_by_caller = True
        self.client.close(self.now)
        self.pump()

    # ------------------------------------------------------------------ rules: the platform

    @rule(count=st.integers(1, 5))
    def events_happen(self, count: int) -> None:
        self.push_events(count)

    def push_events(self, count: int) -> None:
        for _ in range(count):
            self.events_pushed += 1
            n = self.events_pushed
            self.platform.push_event("C2C_MESSAGE_CREATE", {"n": n}, self.now, f"ev-{n}")
        self.pump()

    def beating_link(self) -> Link | None:
        """The gateway socket whose heartbeats are being watched, if any."""
        for link in self.live_links():
            if link.gateway and not link.tainted and link.interval is not None:
                return link
        return None

    @precondition(lambda self: self.session_dispatches and self.beating_link())
    @rule(index=st.integers(0, 100))
    def platform_repeats_a_dispatch(self, index: int) -> None:
        """A dispatch of this session the client already had comes again, as a replay may bring it."""
        frame = server_frame(self.session_dispatches[index % len(self.session_dispatches)])
        link = self.beating_link()
        assert link is not None
        link.to_client.append(frame)

    @rule(fault=st.sampled_from(sorted(FAULTS)), size=st.integers(1, 4), seconds=st.floats(1, 900))
    def platform_fault(self, fault: str, size: int, seconds: float) -> None:
        FAULTS[fault](self.platform, self.now, size, seconds)
        self.pump()

    @rule(code=st.sampled_from(CLOSE_CODES))
    def platform_closes_the_gateway(self, code: int) -> None:
        self.platform.close_gateway(code, self.now)
        self.pump()

    @precondition(lambda self: self.steps >= 40)
    @rule(code=st.sampled_from(FATAL_CODES))
    def platform_closes_for_good(self, code: int) -> None:
        self.platform.close_gateway(code, self.now)
        self.pump()

    # ------------------------------------------------------------------ invariants

    @invariant()
    def count_the_step(self) -> None:
        """Not a check: counts steps, so that the rules that end a run wait for it to get going."""
        self.steps += 1

    @invariant()
    def never_stuck(self) -> None:
        state = self.client.state
        health = self.client.health(self.now)
        if state is State.FATAL:
            assert self.fatal is not None and health.fatal_reason == self.fatal.reason
        elif state is State.CLOSED:
            assert self.closed_by_caller, "closed without close()"
        else:
            assert self.client.next_timer() is not None, f"stuck in {state.value} with nothing armed"

    @invariant()
    def next_timer_never_in_the_past(self) -> None:
        due = self.client.next_timer()
        assert due is None or due >= self.now

    @invariant()
    def heartbeats_on_time(self) -> None:
        link = self.beating_link()
        if self.client.state in LIVE and link is not None and link.beat_base is not None and link.interval is not None:
            if self.late_at <= link.beat_base:
                assert self.now - link.beat_base <= link.interval + EPSILON, "a heartbeat is overdue"


GatewayMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_gateway_state_machine = GatewayMachine.TestCase
