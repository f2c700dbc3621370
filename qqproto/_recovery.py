"""After a gateway socket is lost: resume or identify, and after how long (the reconnect decision)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from ._backoff import Backoff
from ._close_codes import CloseAction, rule_for_close
from ._config import GatewayConfig
from ._session import Session

__all__ = ["Disconnect", "GiveUp", "Recovery", "disconnect_for_close"]

# A platform request to reconnect is no failure of the resume it interrupts.
_NOT_A_RESUME_FAILURE = frozenset({"reconnect_request"})


@dataclass(frozen=True)
class Disconnect:
    """Why a gateway socket ended and how to come back: ``cause`` is the key it is counted by.

    ``instruction``: the platform asked for it (a rule marked so in the close-code table).
    """

    cause: str
    reason: str
    resume: bool
    immediate: bool = False
    floor: float = 0.0
    instruction: bool = False


@dataclass(frozen=True)
class GiveUp:
    """No more reconnects: ``max_reconnect_attempts`` ran out."""

    reason: str


def disconnect_for_close(code: int | None, reason: str, config: GatewayConfig) -> tuple[CloseAction, Disconnect]:
    """What the gateway's close (``code`` None: a drop without one) means, from the close-code table."""
    rule = rule_for_close(code)
    detail = f"the gateway closed the connection with {code}" if code is not None else "the connection dropped"
    if reason:
        detail += f" ({reason[:200]})"
    detail += f": {rule.meaning}"
    action = rule.action
    return action, Disconnect(
        f"close_{code}" if code is not None else "connection_lost",
        detail,
        resume=action is not CloseAction.IDENTIFY,
        immediate=action is CloseAction.RESUME,
        floor=config.cooldown if action is CloseAction.RESUME_AFTER_COOLDOWN else 0.0,
        instruction=rule.instruction,
    )


class Recovery:
    """Keeps the backoff and the reconnect counts; turns each loss into a delay, or into giving up."""

    __slots__ = ("_config", "backoff", "last_disconnect_reason", "reconnects_by_cause")

    def __init__(self, config: GatewayConfig, rng: random.Random) -> None:
        self._config = config
        self.backoff = Backoff(config, rng)
        self.reconnects_by_cause: Counter[str] = Counter()
        self.last_disconnect_reason: str | None = None

    def link_lost(self, why: Disconnect, session: Session, now: float, *, lived: float | None, resuming: bool) -> bool:
        """A gateway socket ended; ``lived`` is how long it stayed open past Hello (None: no Hello).

        A session that stayed healthy resets the backoff; a resume that keeps failing, or a
        close that asks for it, drops the session so that the next connection identifies.
        True if a held session was dropped.
        """
        since = session.connected_since
        if since is not None and now - since >= self._config.healthy_after:
            self.backoff.reset()
        # A socket that got past Hello and then ended counts toward the long cooldown, unless the
        # platform instructed a live session to reconnect; failed connects have their own backoff.
        self.backoff.connection_ended(None if why.instruction and since is not None else lived)
        session.connected_since = None
        resume = why.resume
        if resuming and why.cause not in _NOT_A_RESUME_FAILURE:
            session.resume_failures += 1
            if session.resume_failures >= self._config.resume_failure_limit:
                resume = False
        return not resume and session.forget()

    def next_attempt(self, why: Disconnect) -> float | GiveUp:
        """Count the reconnect ``why`` calls for; its delay, or GiveUp once the attempts ran out."""
        self.reconnects_by_cause[why.cause] += 1
        self.last_disconnect_reason = why.reason
        delay = self.backoff.next_delay(immediate=why.immediate, floor=why.floor)
        if self.backoff.exhausted:
            limit = self._config.max_reconnect_attempts
            return GiveUp(
                f"gave up after {limit} reconnect attempts (max_reconnect_attempts={limit}): fix the last "
                f"failure, or raise max_reconnect_attempts (None never gives up); last failure: {why.reason}"
            )
        return delay
