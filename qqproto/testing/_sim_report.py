"""What a simulated run shows: the report, its timeline, and the uptime the run measures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Report", "TimelineEntry", "Uptime", "count_events", "count_replies"]


@dataclass(frozen=True)
class TimelineEntry:
    """A moment worth drawing: the client changed state, or a reconnect was scheduled and why."""

    at: float
    state: str
    cause: str | None = None


@dataclass
class Report:
    """What a simulated run shows; ``to_dict`` gives the JSON keys ``qqproto simulate`` prints."""

    plan: str
    seed: int
    days: float
    events_generated: int = 0
    events_delivered: int = 0
    events_lost: int = 0
    events_duplicated: int = 0
    #: Events a crashed process held but had not finished, handed over again after the restart.
    events_redelivered_after_crash: int = 0
    events_abandoned_by_platform: int = 0
    identifies: int = 0
    #: Bot processes started after the first: deploys and crashes.
    restarts: int = 0
    resumes: int = 0
    gateway_url_fetches: int = 0
    gateway_cache_invalidations: int = 0
    token_fetches: int = 0
    reconnects_by_reason: dict[str, int] = field(default_factory=dict)
    faults_injected: dict[str, int] = field(default_factory=dict)
    uptime_ratio: float = 0.0
    longest_outage_s: float = 0.0
    silent_dead_s: float = 0.0
    timer_late_count: int = 0
    replies_requested: int = 0
    replies_delivered: int = 0
    replies_lost: int = 0
    replies_duplicated: int = 0
    replies_failed: int = 0
    replies_sent_active: int = 0
    fatal: str | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    #: ``(start, end)`` of every stretch without a live session, in simulated seconds.
    outages: list[tuple[float, float]] = field(default_factory=list)
    #: ``(at, fault, value)`` of every fault struck.
    fault_log: list[tuple[float, str, float]] = field(default_factory=list)
    #: Dispatches delivered to the application in each simulated hour (hour index → count).
    delivered_per_hour: Counter[int] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        """The figures as plain JSON types, without the timeline and the logs drawn from it."""
        data = asdict(self)
        for key in ("timeline", "outages", "fault_log", "delivered_per_hour"):
            del data[key]
        return data


class Uptime:
    """Up means the client says it is connected and the platform agrees; outages and silent deaths are measured.

    ``look`` is called after every client step, and after every platform step with the platform's
    view: nothing else changes what it sees.
    """

    def __init__(self, report: Report, hello_interval: float, end: float) -> None:
        self._report = report
        self._hello_interval = hello_interval
        self._end = end
        self._mark = 0.0
        self._up = False
        self._connected = False
        self._live = False
        self._silent_since: float | None = None
        self._down_since: float | None = 0.0
        self._up_time = 0.0

    def look(self, when: float, connected: bool, live: bool | None = None) -> None:
        """Note the client's and the platform's view at ``when``; act only when either changed."""
        if when > self._end:
            return
        if live is None:
            live = self._live
        if connected == self._connected and live == self._live:
            return
        self._connected, self._live = connected, live
        if self._up:
            self._up_time += when - self._mark
        self._mark = when
        up = connected and live
        if up != self._up:
            if up and self._down_since is not None:
                self._report.longest_outage_s = max(self._report.longest_outage_s, when - self._down_since)
                self._report.outages.append((self._down_since, when))
                self._down_since = None
            elif not up:
                self._down_since = when
            self._up = up
        silent = connected and not live
        if silent and self._silent_since is None:
            self._silent_since = when
        elif not silent and self._silent_since is not None:
            self._close_silent(when)

    def finish(self, now: float) -> None:
        """End the measurement at ``now`` (or the run's end) and fill the report's uptime figures."""
        end = min(now, self._end)
        if self._up:
            self._up_time += end - self._mark
        self._mark = end
        if self._silent_since is not None:
            self._close_silent(end)
        if self._down_since is not None:
            self._report.longest_outage_s = max(self._report.longest_outage_s, end - self._down_since)
            self._report.outages.append((self._down_since, end))
        self._report.uptime_ratio = self._up_time / end if end > 0 else 0.0

    def _close_silent(self, when: float) -> None:
        assert self._silent_since is not None
        excess = when - self._silent_since - 2 * self._hello_interval
        self._report.silent_dead_s += max(0.0, excess)
        self._silent_since = None


def count_events(report: Report, generated: set[str], finished: Counter[str], abandoned: set[str]) -> None:
    """Fill the event figures: each generated event finished once, unless the platform dropped it."""
    delivered = set(finished)
    missing = generated - delivered
    report.events_generated = len(generated)
    report.events_delivered = len(delivered & generated)
    report.events_duplicated = sum(n - 1 for n in finished.values() if n > 1)
    report.events_abandoned_by_platform = len(missing & abandoned)
    report.events_lost = len(missing) - report.events_abandoned_by_platform


def count_replies(report: Report, requested: set[str], received: Sequence[Mapping[str, Any]]) -> None:
    """Fill the reply figures from what the application asked for and the bodies the platform accepted."""
    contents = Counter(str(body.get("content")) for body in received)
    report.replies_requested = len(requested)
    report.replies_delivered = len(requested & set(contents))
    report.replies_lost = report.replies_requested - report.replies_delivered
    report.replies_duplicated = sum(n - 1 for n in contents.values() if n > 1)
    report.replies_sent_active = sum(1 for body in received if "msg_id" not in body)
