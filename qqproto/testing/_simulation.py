"""Months of a bot's life in seconds: one virtual clock, an in-memory network, a client and the fake platform."""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._config import GatewayConfig
from .._connection import QQGatewayConnection
from .._events import (
    CloseSocket,
    Dispatch,
    Fatal,
    MessageFailed,
    OpenSocket,
    Ready,
    ReconnectScheduled,
    SendData,
    SessionForgotten,
    TimerLate,
)
from .._sending import Scene
from .._state import State
from ._actions import ServerClose, ServerSend
from ._dispatches import DispatchGenerator
from ._faults import strike
from ._plans import Fault, Plan
from ._platform import FakeQQPlatform
from ._sim_process import EXIT_AFTER_CLOSE, REPLY_SCENES, BotProcess
from ._sim_report import Report, TimelineEntry, Uptime, count_events, count_replies

__all__ = ["Report", "Simulation", "TimelineEntry"]

GATEWAY_URL = "wss://api.sgroup.qq.com/websocket"
PROGRESS_STEP = 3600.0
# The message events a bot replies to, and where its reply goes.
# After the last day no new events or faults come; this long is given to deliver what is in flight.
SETTLE = 900.0


@dataclass
class _Link:
    """One client socket and the platform connection behind it."""

    sock_id: int
    conn_id: int
    generation: int
    up: bool = True
    at_platform: bool = False
    to_client_at: float = 0.0
    to_platform_at: float = 0.0


class Simulation:
    """Runs a :class:`QQGatewayConnection` against a :class:`FakeQQPlatform` under a fault plan."""

    def __init__(
        self,
        plan: Plan,
        *,
        seed: int,
        days: float,
        client_config: GatewayConfig | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        seeds = random.Random(seed)
        self.plan = plan
        self.days = days
        self.end = days * 86400.0
        self.now = 0.0
        self._net = random.Random(seeds.getrandbits(64))
        self._faults = random.Random(seeds.getrandbits(64))
        self._events = DispatchGenerator(random.Random(seeds.getrandbits(64)))
        self.platform = FakeQQPlatform(plan.platform, rng=random.Random(seeds.getrandbits(64)))
        self.platform.gateway_url = GATEWAY_URL
        config = client_config or GatewayConfig(app_id=plan.platform.app_id, client_secret=plan.platform.client_secret)
        self.bot = BotProcess(config, seeds.getrandbits(64))
        self.report = Report(plan=plan.name, seed=seed, days=days)
        self._progress = progress
        self._queue: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._order = 0
        self._links: dict[int, _Link] = {}
        self._outage_until = -1.0
        self._stall_until = -1.0
        self._client_timer: float | None = None
        self._platform_timer: float | None = None
        self._generated: set[str] = set()
        self._event_count = 0
        self._causes: Counter[str] = Counter()
        self._faults_seen: Counter[str] = Counter()
        self._state = State.IDLE
        self._timer_late = 0
        self._fatal: str | None = None
        self._uptime = Uptime(self.report, plan.platform.heartbeat_interval_ms / 1000.0, self.end)
        self._latency_base, self._latency_jitter = plan.latency, plan.latency_jitter
        # What the simulation does with each action of the client; notices it has no use for are absent.
        self._client_handlers: dict[type, Callable[[Any], object]] = {
            SendData: self._client_sent,
            OpenSocket: self._client_opened,
            CloseSocket: self._client_closed,
            Dispatch: self._delivered_to_app,
            Ready: self.bot.hand,
            SessionForgotten: self.bot.hand,
            ReconnectScheduled: self._reconnect_scheduled,
            TimerLate: self._timer_was_late,
            Fatal: self._gave_up,
            MessageFailed: self._reply_failed,
        }

    @property
    def client(self) -> QQGatewayConnection:
        """The connection of the bot process running now."""
        return self.bot.client

    # ------------------------------------------------------------------ the virtual clock

    def _at(self, when: float, fn: Callable[..., None], *args: Any) -> None:
        self._order += 1
        heapq.heappush(self._queue, (when, self._order, fn, args))

    def run(self) -> Report:
        """Simulate until the end of the last day, or until the client gives up for good."""
        self._at(0.0, self._client_start)
        self._at(self._net.expovariate(1.0 / self.plan.event_interval), self._generate_event)
        for timed in self.plan.timed:
            self._at(timed.at, self._inject, timed.fault, timed.value, None)
        for rf in self.plan.random:
            self._at(
                self._faults.expovariate(1.0 / rf.mean_interval), self._inject, rf.fault, rf.value, rf.mean_interval
            )
        next_progress = PROGRESS_STEP
        while self._queue and self._fatal is None:
            when, _, fn, args = heapq.heappop(self._queue)
            if when > self.end + SETTLE:
                break
            self.now = when
            fn(*args)
            if self._progress is not None and when >= next_progress:
                self._progress(min(1.0, when / self.end))
                next_progress = when + PROGRESS_STEP
        self._uptime.finish(self.now)
        return self._finish()

    # ------------------------------------------------------------------ the client's side

    def _client_start(self) -> None:
        self.client.start(self.now)
        self._after_client()

    def _client_call(self, method: Callable[..., None], *args: Any) -> None:
        """An input for the client, postponed while its host loop is blocked; dropped if its process died."""
        if not self.bot.alive or getattr(method, "__self__", None) is not self.bot.client:
            return
        if self.now < self._stall_until:
            self._at(self._stall_until, self._client_call, method, *args)
            return
        method(*args, self.now)
        self._after_client()

    def _client_timer_fired(self, at: float) -> None:
        if self._client_timer == at:
            self._client_timer = None
        if not self.bot.alive:
            return
        if self.now < self._stall_until:
            self._wake_client(self._stall_until)
            return
        self.client.handle_timer(self.now)  # does nothing if a later input moved its timer on
        self._after_client()

    def _wake_client(self, due: float | None) -> None:
        """Make sure a wake-up is queued for ``due``; a later one left in the queue only rechecks."""
        if due is not None and (self._client_timer is None or due < self._client_timer):
            self._client_timer = due
            self._at(due, self._client_timer_fired, due)

    def _after_client(self) -> None:
        handlers = self._client_handlers
        bot = self.bot
        for action in self.client.next_actions():
            handler = handlers.get(type(action))
            if handler is not None:
                handler(action)
                if not bot.alive:
                    return  # the rest of the batch dies with the process
        state = self.client.state
        if state is not self._state:
            self._state = state
            self.report.timeline.append(TimelineEntry(self.now, state.value))
            self._uptime.look(self.now, state is State.CONNECTED)
        self._wake_client(self.client.next_timer())

    def _client_sent(self, action: SendData) -> None:
        self._to_platform(self.bot.socket_base + action.sock_id, action.data)

    def _client_opened(self, action: OpenSocket) -> None:
        self._open(action.sock_id)

    def _client_closed(self, action: CloseSocket) -> None:
        self._to_platform(self.bot.socket_base + action.sock_id, b"")

    def _delivered_to_app(self, action: Dispatch) -> None:
        downtime = self.bot.crash_pending
        if not self.bot.hand(action):
            self._process_died("crash", downtime)
            return
        self.report.delivered_per_hour[int(self.now // 3600)] += 1
        delay = self.plan.reply_delay
        scene = REPLY_SCENES.get(action.event_type)
        if delay is not None and scene is not None and isinstance(action.data, dict):
            self._at(self.now + self._faults.uniform(*delay), self._reply, action, scene, self.now)

    def _reply(self, dispatch: Dispatch, scene: Scene, received_at: float) -> None:
        """The bot answers a message it received a while ago, as an application would."""
        if self._fatal is not None or not self.bot.alive:
            return
        self.client.send_message(self.bot.reply_to(dispatch, scene, received_at), self.now)
        self._after_client()

    def _reply_failed(self, action: MessageFailed) -> None:
        self.bot.replies_failed += 1

    def _reconnect_scheduled(self, action: ReconnectScheduled) -> None:
        self._causes[action.cause] += 1
        self.report.timeline.append(TimelineEntry(self.now, "waiting", action.cause))

    def _timer_was_late(self, action: TimerLate) -> None:
        self._timer_late += 1

    def _gave_up(self, action: Fatal) -> None:
        self._fatal = action.reason

    # ------------------------------------------------------------------ the network

    def _latency(self) -> float:
        return self._latency_base + self._net.random() * self._latency_jitter

    def _open(self, sock_id: int) -> None:
        conn_id = self.bot.socket_base + sock_id
        link = self._links[conn_id] = _Link(sock_id, conn_id, self.bot.generation)
        if self.now < self._outage_until or self._net.random() < self.plan.connect_loss:
            link.up = False  # the SYN is lost: the client's connect deadline will notice
            return
        self._at(self.now + self._latency(), self._platform_accept, link)

    def _platform_accept(self, link: _Link) -> None:
        if not link.up:
            return
        if self.platform.connection_made(link.conn_id, self.now):
            link.at_platform = True
            self._at(self.now + self._latency(), self._client_call, self.client.socket_opened, link.sock_id)
        else:
            link.up = False
            self._at(
                self.now + self._latency(),
                self._client_call,
                self.client.socket_failed,
                link.sock_id,
                "connection refused",
            )
        self._after_platform()

    def _to_platform(self, conn_id: int, data: bytes) -> None:
        link = self._links.get(conn_id)
        if link is None or not link.up:
            return
        link.to_platform_at = max(self.now + self._latency(), link.to_platform_at)
        self._at(link.to_platform_at, self._platform_receive, link, data)

    def _platform_receive(self, link: _Link, data: bytes) -> None:
        if not link.up or not link.at_platform:
            return
        if data == b"":
            link.at_platform = False
        self.platform.receive_data(link.conn_id, data, self.now)
        self._after_platform()

    def _to_client(self, conn_id: int, data: bytes) -> None:
        link = self._links.get(conn_id)
        if link is None or not link.up:
            return
        link.to_client_at = max(self.now + self._latency(), link.to_client_at)
        self._at(link.to_client_at, self._client_receive, link, data)

    def _client_receive(self, link: _Link, data: bytes) -> None:
        if link.up and link.generation == self.bot.generation:
            self._client_call(self.client.receive_data, link.sock_id, data)

    # ------------------------------------------------------------------ the platform's side

    def _after_platform(self) -> None:
        for action in self.platform.next_actions():
            if isinstance(action, ServerSend):
                self._to_client(action.conn_id, action.data)
            elif isinstance(action, ServerClose):
                link = self._links.get(action.conn_id)
                if link is not None and link.at_platform:
                    link.at_platform = False
                    self._to_client(action.conn_id, b"")
        self._uptime.look(self.now, self._state is State.CONNECTED, self.platform.has_live_gateway(self.now))
        self._wake_platform(self.platform.next_timer())

    def _platform_timer_fired(self, at: float) -> None:
        if self._platform_timer == at:
            self._platform_timer = None
        due = self.platform.next_timer()
        if due is None or due > self.now:
            self._wake_platform(due)
            return
        self.platform.handle_timer(self.now)
        self._after_platform()

    def _wake_platform(self, due: float | None) -> None:
        if due is not None and (self._platform_timer is None or due < self._platform_timer):
            self._platform_timer = due
            self._at(due, self._platform_timer_fired, due)

    def _generate_event(self) -> None:
        if self.now > self.end:
            return
        self._push_event()
        self._at(self.now + self._net.expovariate(1.0 / self.plan.event_interval), self._generate_event)

    def _push_event(self) -> None:
        self._event_count += 1
        event_type, data, _ = self._events.next(self.now)
        event_id = f"{event_type}:sim-{self._event_count}"
        if self.platform.push_event(event_type, data, self.now, event_id) is not None:
            self._generated.add(event_id)
        self._after_platform()

    # ------------------------------------------------------------------ faults

    def _inject(self, fault: Fault, value: float, mean_interval: float | None) -> None:
        if self.now > self.end:
            return
        self._faults_seen[fault.value] += 1
        self.report.fault_log.append((self.now, fault.value, value))
        now, platform = self.now, self.platform
        if fault is Fault.STOP_ACKS:
            platform.stop_acks(now)
            self._at(now + value, self._resume_acks)
        elif fault is Fault.OUTAGE:
            self._outage_until = now + value
            for link in self._links.values():
                link.up = False
        elif fault is Fault.HOST_STALL:
            self._stall_until = max(self._stall_until, now + value)
        elif fault is Fault.BURST:
            for i in range(int(value)):
                self._at(now + i * 0.05, self._push_event)
        elif fault is Fault.DEPLOY:
            self._deploy(value)
        elif fault is Fault.CRASH:
            if self.bot.alive:
                self.bot.crash_pending = value  # it strikes while the application holds the next event
        else:
            strike(platform, fault, value, now, self._faults)
        self._after_platform()
        if mean_interval is not None:
            self._at(now + self._faults.expovariate(1.0 / mean_interval), self._inject, fault, value, mean_interval)

    # ------------------------------------------------------------------ restarts

    def _deploy(self, downtime: float) -> None:
        """A graceful restart: close keeping the session, exit, and start again after ``downtime``."""
        if not self.bot.alive:
            return
        self.client.close(self.now, keep_session=True)
        self._after_client()
        self._at(self.now + EXIT_AFTER_CLOSE, self._process_died, "deploy", max(0.0, downtime - EXIT_AFTER_CLOSE))

    def _process_died(self, why: str, downtime: float | None) -> None:
        """The process is gone; the kernel closes its sockets; a new one starts after ``downtime``."""
        bot = self.bot
        if bot.alive:
            bot.die()
        self.report.timeline.append(TimelineEntry(self.now, "closed", why))
        self._state = State.CLOSED
        self._uptime.look(self.now, False)
        for link in self._links.values():
            if link.generation == bot.generation and link.up and link.at_platform:
                self._at(self.now + self._latency(), self._platform_receive, link, b"")
        self._client_timer = None
        self._at(self.now + (downtime or 0.0), self._restart)

    def _restart(self) -> None:
        self.bot.restart(self.now)
        self._after_client()

    def _resume_acks(self) -> None:
        self.platform.resume_acks(self.now)
        self._after_platform()

    # ------------------------------------------------------------------ the report

    def _finish(self) -> Report:
        report, counters, bot = self.report, self.platform.counters, self.bot
        count_events(report, self._generated, bot.finished, self.platform.abandoned_event_ids)
        report.identifies = counters.identifies
        report.resumes = counters.resumes
        report.gateway_url_fetches = bot.total("gateway_url_fetches")
        report.gateway_cache_invalidations = bot.total("gateway_cache_invalidations")
        report.token_fetches = bot.total("token_fetches")
        report.events_redelivered_after_crash = bot.redelivered_after_crash
        report.restarts = bot.generation
        report.reconnects_by_reason = dict(sorted(self._causes.items()))
        report.faults_injected = dict(sorted(self._faults_seen.items()))
        report.timer_late_count = self._timer_late
        count_replies(report, bot.replies_requested, [m.body for m in self.platform.messages.received])
        report.replies_failed = bot.replies_failed
        report.fatal = self._fatal
        return report
