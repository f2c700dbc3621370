"""What a connection needs to know: credentials, intents, endpoints and its tuning."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ._errors import LocalProtocolError
from ._http import Endpoint

__all__ = ["PRODUCTION_API_BASE", "SANDBOX_API_BASE", "TOKEN_URL", "GatewayConfig", "Intents"]

PRODUCTION_API_BASE = "https://api.sgroup.qq.com"
SANDBOX_API_BASE = "https://sandbox.api.sgroup.qq.com"
TOKEN_URL = "https://bots.qq.com/app/getAppAccessToken"


class Intents(enum.IntFlag):
    """The event groups a bot subscribes to (docs/protocol.md §6)."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    DIRECT_MESSAGE = 1 << 12
    OPEN_FORUMS_EVENT = 1 << 18
    AUDIO_OR_LIVE_CHANNEL_MEMBER = 1 << 19
    ENTER_AIO = 1 << 23
    GROUP_AND_C2C_EVENT = 1 << 25
    INTERACTION = 1 << 26
    MESSAGE_AUDIT = 1 << 27
    FORUMS_EVENT = 1 << 28
    AUDIO_ACTION = 1 << 29
    PUBLIC_GUILD_MESSAGES = 1 << 30


@dataclass(frozen=True)
class GatewayConfig:
    """Everything a :class:`QQGatewayConnection` is told up front; all times are in seconds."""

    app_id: str
    client_secret: str = field(repr=False)
    intents: Intents | int = Intents.GROUP_AND_C2C_EVENT | Intents.PUBLIC_GUILD_MESSAGES
    shard: tuple[int, int] = (0, 1)
    api_base: str = PRODUCTION_API_BASE
    token_url: str = TOKEN_URL
    max_reconnect_attempts: int | None = None

    # Heartbeats: beat every Hello interval x ratio; a late timer past the threshold is reported.
    heartbeat_ratio: float = 0.8
    late_timer_threshold: float = 1.0
    # Hello's heartbeat_interval outside (low, high) seconds is clamped into it: never a beat storm.
    heartbeat_interval_bounds: tuple[float, float] = (1.0, 600.0)

    # Deadlines on every wait.
    connect_timeout: float = 10.0
    http_timeout: float = 15.0
    hello_timeout: float = 10.0
    ready_timeout: float = 20.0
    close_timeout: float = 5.0

    # Reconnect policy.
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    healthy_after: float = 60.0
    quick_disconnect_window: float = 5.0
    quick_disconnect_limit: int = 3
    cooldown: float = 60.0
    cooldown_cap: float = 1800.0
    invalid_session_delay: tuple[float, float] = (1.0, 5.0)
    resume_failure_limit: int = 3
    gateway_url_failure_limit: int = 3

    # Token refresh: fetch a new token this long before the current one expires.
    token_refresh_margin: float = 50.0

    # Sending: a reply turns active this long before its window closes (or is refused when
    # active messages are not allowed); a message still failing after send_give_up_after fails.
    allow_active_messages: bool = True
    reply_window_margin: float = 30.0
    send_give_up_after: float = 3600.0

    # Limits on what the network may make us buffer, in bytes; no other buffer of a socket grows
    # past one read. A gateway message (all its fragments, as UTF-8) larger than max_message_size
    # closes the socket with 1009 and resumes.
    max_message_size: int = 4 * 1024 * 1024
    # An HTTP response head (status line and headers), or the WebSocket upgrade answer's head,
    # larger than this fails that request, which is retried.
    max_http_header_size: int = 64 * 1024
    # An HTTP response body (token, /gateway/bot) larger than this fails that request, which is retried.
    max_http_body_size: int = 1024 * 1024

    user_agent: str = "qqproto/0.1"

    def __post_init__(self) -> None:
        _check(isinstance(self.app_id, str) and self.app_id.strip() != "", "app_id must be a non-empty string")
        _check(
            isinstance(self.client_secret, str) and self.client_secret != "",
            "client_secret must be a non-empty string",
        )
        _check(isinstance(self.intents, int) and int(self.intents) > 0, "intents must be a positive Intents value")
        _check(
            isinstance(self.shard, tuple)
            and len(self.shard) == 2
            and all(isinstance(n, int) for n in self.shard)
            and 0 <= self.shard[0] < self.shard[1],
            f"shard must be (shard_id, shard_count) with 0 <= shard_id < shard_count, got {self.shard!r}",
        )
        for name in ("api_base", "token_url"):
            url = getattr(self, name)
            _check(_is_http_url(url), f"{name} must be an http(s) URL, got {url!r}")
        _check(
            self.max_reconnect_attempts is None or self.max_reconnect_attempts >= 0,
            "max_reconnect_attempts must be None (never give up) or a count >= 0",
        )
        _check(0 < self.heartbeat_ratio <= 1, "heartbeat_ratio must be in (0, 1]")
        for name in (
            "late_timer_threshold",
            "connect_timeout",
            "http_timeout",
            "hello_timeout",
            "ready_timeout",
            "close_timeout",
            "backoff_base",
            "backoff_cap",
            "healthy_after",
            "quick_disconnect_window",
            "cooldown",
            "cooldown_cap",
            "token_refresh_margin",
            "reply_window_margin",
            "send_give_up_after",
        ):
            _check(getattr(self, name) > 0, f"{name} must be positive")
        low, high = self.invalid_session_delay
        _check(0 <= low <= high, "invalid_session_delay must be a (low, high) range with 0 <= low <= high")
        low, high = self.heartbeat_interval_bounds
        _check(0 < low <= high, "heartbeat_interval_bounds must be a (low, high) range in seconds with 0 < low <= high")
        for name in (
            "quick_disconnect_limit",
            "resume_failure_limit",
            "gateway_url_failure_limit",
            "max_message_size",
            "max_http_header_size",
            "max_http_body_size",
        ):
            value = getattr(self, name)
            _check(type(value) is int and value >= 1, f"{name} must be a whole number of at least 1, got {value!r}")

    def __repr__(self) -> str:
        return (
            f"GatewayConfig(app_id={self.app_id!r}, client_secret=<hidden>, intents={int(self.intents)}, "
            f"shard={self.shard!r}, api_base={self.api_base!r})"
        )


def _is_http_url(url: object) -> bool:
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        return False
    try:
        Endpoint.from_url(url)
    except ValueError:
        return False
    return True


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise LocalProtocolError(f"GatewayConfig: {message}")
