"""Fault plans for the simulation: what goes wrong, when, and how often, as data."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from ._config import PlatformConfig

__all__ = ["PLANS", "Fault", "Plan", "RandomFault", "TimedFault"]

HOUR = 3600.0
DAY = 24 * HOUR


class Fault(enum.Enum):
    """One kind of trouble the simulation can cause."""

    RECONNECT = "op 7"
    INVALIDATE = "op 9 (not resumable)"
    INVALIDATE_RESUMABLE = "op 9 (resumable)"
    FAIL_RESUMES = "op 9 answering the next resume"
    DROP = "TCP drop"
    SILENCE = "half-open silence"
    STOP_ACKS = "heartbeat ACKs stop for a while"
    OUTAGE = "network outage"
    TOKEN_5XX = "token endpoint 5xx burst"
    EXPIRE_TOKENS = "tokens expire early"
    HOST_STALL = "client host loop blocked"
    BURST = "dispatch burst"
    CLOSE = "close with a code"
    FAIL_UPGRADES = "gateway upgrades refused"
    SEND_RATE_LIMIT = "sends answered 22009"
    DEPLOY = "graceful restart (deploy)"
    CRASH = "crash with an event in hand"


@dataclass(frozen=True)
class TimedFault:
    """A fault at a fixed simulated time; ``value`` is its size (seconds, count or close code)."""

    at: float
    fault: Fault
    value: float = 0.0


@dataclass(frozen=True)
class RandomFault:
    """A fault that strikes as a Poisson process with the given mean interval."""

    fault: Fault
    mean_interval: float
    value: float = 0.0


@dataclass(frozen=True)
class Plan:
    """Everything a simulated run is made of, apart from its length and seed."""

    name: str
    description: str
    platform: PlatformConfig = PlatformConfig()
    latency: float = 0.03
    latency_jitter: float = 0.02
    connect_loss: float = 0.0
    event_interval: float = 60.0
    #: The bot replies to each message after a delay drawn from this range; None: no replies.
    reply_delay: tuple[float, float] | None = None
    timed: tuple[TimedFault, ...] = ()
    random: tuple[RandomFault, ...] = field(default_factory=tuple)


PRODUCTION = Plan(
    name="production",
    description=(
        "what bots meet in the field: idle 4009 every ~30 min, op 7 hourly, TCP drops, "
        "half-open silence, a weekly 10-minute outage, /gateway at 2 calls a minute, "
        "token expiry, op 9 on some resumes, token 5xx bursts, dispatch bursts, a daily deploy "
        "(20 s down) and a weekly crash (30 s down) with a session store"
    ),
    platform=PlatformConfig(session_lifetime=30 * 60, gateway_rate_limit=(2, 60.0), token_ttl=7200),
    connect_loss=0.01,
    event_interval=120.0,
    random=(
        RandomFault(Fault.RECONNECT, HOUR),
        RandomFault(Fault.DROP, 3 * HOUR),
        RandomFault(Fault.SILENCE, 12 * HOUR),
        RandomFault(Fault.OUTAGE, 7 * DAY, 600.0),
        RandomFault(Fault.FAIL_RESUMES, 8 * HOUR, 1.0),
        RandomFault(Fault.INVALIDATE_RESUMABLE, 12 * HOUR),
        RandomFault(Fault.TOKEN_5XX, 12 * HOUR, 5.0),
        RandomFault(Fault.HOST_STALL, DAY, 45.0),
        RandomFault(Fault.STOP_ACKS, DAY, 120.0),
        RandomFault(Fault.BURST, 2 * HOUR, 50.0),
        RandomFault(Fault.DEPLOY, DAY, 20.0),
        RandomFault(Fault.CRASH, 7 * DAY, 30.0),
    ),
)

PLANS: dict[str, Plan] = {
    plan.name: plan
    for plan in (
        PRODUCTION,
        replace(
            PRODUCTION,
            name="replies",
            description=(
                "production, with the bot answering every message after 0.5 s to 10 min (so group "
                "replies outlive their 5-minute window), sends answered 22009 in bursts, and an "
                "outage every day"
            ),
            reply_delay=(0.5, 600.0),
            random=(
                *(f for f in PRODUCTION.random if f.fault not in (Fault.DEPLOY, Fault.CRASH)),
                RandomFault(Fault.SEND_RATE_LIMIT, HOUR, 5.0),
                RandomFault(Fault.OUTAGE, DAY, 600.0),
            ),
        ),
        Plan(
            name="calm",
            description="a healthy platform: only the idle-session 4009 every 30 minutes",
            platform=PlatformConfig(session_lifetime=30 * 60),
        ),
        Plan(
            name="hostile",
            description="production, five times as often, with 5xx storms and 20% of connects lost",
            platform=PlatformConfig(session_lifetime=10 * 60, gateway_rate_limit=(2, 60.0), token_ttl=1800),
            connect_loss=0.2,
            event_interval=20.0,
            random=(
                RandomFault(Fault.RECONNECT, HOUR / 5),
                RandomFault(Fault.DROP, 3 * HOUR / 5),
                RandomFault(Fault.SILENCE, 12 * HOUR / 5),
                RandomFault(Fault.OUTAGE, DAY, 600.0),
                RandomFault(Fault.FAIL_RESUMES, 8 * HOUR / 5, 2.0),
                RandomFault(Fault.INVALIDATE, 12 * HOUR),
                RandomFault(Fault.TOKEN_5XX, 2 * HOUR, 20.0),
                RandomFault(Fault.EXPIRE_TOKENS, DAY),
                RandomFault(Fault.HOST_STALL, 6 * HOUR, 90.0),
                RandomFault(Fault.BURST, HOUR, 300.0),
            ),
        ),
    )
}
