"""What the fake platform saw and did, as plain numbers for assertions and reports."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

__all__ = ["PlatformCounters"]


@dataclass
class PlatformCounters:
    """Running totals kept by a :class:`FakeQQPlatform`."""

    token_fetches: int = 0
    tokens_issued: int = 0
    token_failures: int = 0
    gateway_calls: int = 0
    gateway_rate_limited: int = 0
    ws_connections: int = 0
    refused_connections: int = 0
    identifies: int = 0
    #: Identifies refused because their max_concurrency bucket had one within the window.
    identifies_throttled: int = 0
    ready_sent: int = 0
    resumes: int = 0
    resumes_ok: int = 0
    resumes_failed: int = 0
    heartbeats: int = 0
    heartbeat_acks: int = 0
    events_generated: int = 0
    events_sent: int = 0
    events_replayed: int = 0
    events_undeliverable: int = 0
    events_abandoned: int = 0
    heartbeat_timeouts: int = 0
    close_codes_sent: dict[int, int] = field(default_factory=dict)
    close_codes_received: dict[int, int] = field(default_factory=dict)
    messages_received: int = 0
    message_refusals: dict[int, int] = field(default_factory=dict)

    def copy(self) -> PlatformCounters:
        """An independent snapshot."""
        return dataclasses.replace(
            self,
            close_codes_sent=dict(self.close_codes_sent),
            close_codes_received=dict(self.close_codes_received),
            message_refusals=dict(self.message_refusals),
        )

    def to_dict(self) -> dict[str, int | dict[int, int]]:
        """The counters as a JSON-ready dict."""
        return dataclasses.asdict(self)
