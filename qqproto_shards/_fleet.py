"""One process's part of a fleet: its membership and shard leases kept in a coordinator, on a thread of its own.

Every round (a third of the lease TTL) the member refreshes its membership, renews its
leases, and moves toward its share of the shards: it claims free shards while it holds fewer,
and hands back one at a time while it holds more, so shards spread evenly as processes come
and go without stopping the world. The runtime hears of each change through callbacks, which
run on this thread and must only hand the news to the runtime's own loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ._coordination import CoordinatorUnavailable, FleetMismatch, IdentifyTurn

__all__ = ["Coordinator", "FleetCoordinator", "FleetHealth", "FleetMember", "IdentifySlots", "shard_targets"]

log = logging.getLogger("qqproto.shards")

#: Rounds per lease TTL: a lease is renewed this many times before it would expire.
ROUNDS_PER_TTL = 3


class Coordinator(Protocol):
    """The part of :class:`RedisCoordinator` a fleet member uses."""

    member_id: str

    def join(self, ttl: float) -> int: ...

    def agree_shard_count(self, shard_count: int, ttl: float) -> int: ...

    def leave(self) -> None: ...

    def members(self) -> list[str]: ...

    def claim(self, shard: int, ttl: float) -> int | None: ...

    def renew(self, shard: int, token: int, ttl: float) -> bool: ...

    def release(self, shard: int, token: int) -> bool: ...

    def owners(self, shard_count: int) -> dict[int, tuple[str, int] | None]: ...


class IdentifySlots(Protocol):
    """The part of :class:`RedisCoordinator` the shared identify gate uses."""

    member_id: str

    def try_identify(
        self, bucket: int, holder: str, *, hold: float, remaining: int | None, reset_after: float | None
    ) -> IdentifyTurn: ...

    def identify_done(self, bucket: int, holder: str, window: float) -> None: ...

    def give_back(self, bucket: int, holder: str) -> None: ...


class FleetCoordinator(Coordinator, IdentifySlots, Protocol):
    """What a fleet needs of its coordinator: leases and membership, and the shared identify ration."""


def shard_targets(shard_count: int, members: list[str]) -> dict[str, int]:
    """How many shards each live member should hold: as even as it gets, the larger shares to the first ids."""
    ranked = sorted(members)
    base, extra = divmod(shard_count, max(1, len(ranked)))
    return {member: base + (1 if rank < extra else 0) for rank, member in enumerate(ranked)}


@dataclass(frozen=True)
class FleetHealth:
    """What a watchdog wants to know of this member: its leases, its peers, and whether it reaches the coordinator."""

    member_id: str
    members: int
    leases: Mapping[int, int]
    #: Why the last round failed (the coordinator unreachable), or None when it worked.
    coordinator_error: str | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (shard ids as strings)."""
        return {
            "member_id": self.member_id,
            "members": self.members,
            "leases": {str(shard): token for shard, token in sorted(self.leases.items())},
            "coordinator_error": self.coordinator_error,
        }


class FleetMember:
    """Holds this process's share of ``shard_count`` shards under leases of ``lease_ttl`` seconds.

    ``on_claimed(shard, token)`` starts a shard (its fencing token already raised in the store
    by ``prepare``); ``on_lost(shard, reason)`` stops one at once; ``on_shed(shard, token)`` asks
    for a graceful stop, after which the runtime calls :meth:`shard_stopped` and the lease is released.
    """

    def __init__(
        self,
        coordinator: Coordinator,
        shard_count: int,
        *,
        lease_ttl: float,
        on_claimed: Callable[[int, int], None],
        on_lost: Callable[[int, str], None],
        on_shed: Callable[[int, int], None],
        prepare: Callable[[int, int], None] = lambda shard, token: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (isinstance(shard_count, int) and shard_count > 0):
            raise ValueError(f"shard_count must be an int > 0, got {shard_count!r}")
        if not lease_ttl > 0:
            raise ValueError(f"lease_ttl must be a number of seconds > 0, got {lease_ttl!r}")
        self.coordinator = coordinator
        self.shard_count = shard_count
        self.lease_ttl = lease_ttl
        self.round = lease_ttl / ROUNDS_PER_TTL
        self._on_claimed, self._on_lost, self._on_shed, self._prepare = on_claimed, on_lost, on_shed, prepare
        self._clock = clock
        self._lock = threading.Condition()
        self._leases: dict[int, int] = {}
        self._confirmed_at: dict[int, float] = {}
        self._shedding: set[int] = set()
        self._stopped_shards: set[tuple[int, int]] = set()
        self._members = 0
        self._error: str | None = None
        #: When the last round that found the coordinator unreachable began (None: the last round worked).
        self._unreachable_at: float | None = None
        self._closing = False
        self._thread: threading.Thread | None = None

    # -- the runtime's side -------------------------------------------------------------

    def start(self) -> None:
        """Run the first round now (raising if the coordinator cannot be reached, or the fleet runs
        another shard count), then keep going on a thread."""
        self.coordinator.join(self.lease_ttl)  # a clear error at start beats a fleet of one
        try:
            self._agree()
        except FleetMismatch:
            self.coordinator.leave()
            raise
        self.step()
        self._thread = threading.Thread(target=self._run, name="qqproto-fleet", daemon=True)
        self._thread.start()

    def shard_stopped(self, shard: int, token: int) -> None:
        """Shard ``shard``, started under ``token``, has stopped on the runtime's side: that lease, if still held, is released next."""
        with self._lock:
            self._stopped_shards.add((shard, token))
            self._lock.notify()

    def may_serve(self, shard: int) -> bool:
        """True while ``shard``'s lease is known to be ours: confirmed within the TTL, or the coordinator is down.

        A process that slept past its leases (SIGSTOP, a long pause) serves nothing until the next
        round has renewed them; while the coordinator is unreachable, running shards keep running.
        """
        now = self._clock()
        with self._lock:
            if shard not in self._leases:
                return False
            if now < self._confirmed_at.get(shard, float("-inf")) + self.lease_ttl:
                return True
            return self._unreachable_at is not None and now < self._unreachable_at + 2 * self.round

    def health(self) -> FleetHealth:
        """A snapshot of this member's leases and its view of the fleet."""
        with self._lock:
            return FleetHealth(self.coordinator.member_id, self._members, dict(self._leases), self._error)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the rounds, release every lease still held and leave the fleet (best effort)."""
        with self._lock:
            self._closing = True
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            leases, self._leases = dict(self._leases), {}
        try:
            for shard, token in leases.items():
                self.coordinator.release(shard, token)
            self.coordinator.leave()
        except Exception as exc:  # the leases expire on their own
            log.warning("fleet: leaving without releasing: %s", exc)

    # -- rounds --------------------------------------------------------------------------

    def step(self) -> None:
        """One round: membership, renewals, releases, then claims or one hand-back toward this member's share."""
        started = self._clock()
        try:
            self._renew_all(started)
            self._release_stopped()
            self._agree()  # a fleet of another count (after Redis lost its data): serve on, claim nothing
            members = self.coordinator.members()
            with self._lock:
                self._members = len(members)
            target = shard_targets(self.shard_count, members).get(self.coordinator.member_id, 0)
            self._move_toward(target, started)
        except Exception as exc:  # unreachable: keep what runs, claim nothing; a store that fails: claim later
            with self._lock:
                if self._error is None:
                    log.warning("fleet: round failed, running shards keep running: %s", exc)
                self._error = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, CoordinatorUnavailable):
                    self._unreachable_at = started
            return
        with self._lock:
            if self._error is not None:
                log.warning("fleet: rounds work again")
            self._error = None
            self._unreachable_at = None

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._closing:
                    self._lock.wait(self.round)
                if self._closing:
                    return
            self.step()

    def _agree(self) -> None:
        agreed = self.coordinator.agree_shard_count(self.shard_count, self.lease_ttl)
        if agreed != self.shard_count:
            raise FleetMismatch(
                f"this process runs {self.shard_count} shards, but the fleet it would join runs {agreed}: "
                "every worker of a fleet needs the same count (stop the old workers before resharding)"
            )

    def _renew_all(self, started: float) -> None:
        self.coordinator.join(self.lease_ttl)
        with self._lock:
            held = dict(self._leases)
        for shard, token in held.items():
            if self.coordinator.renew(shard, token, self.lease_ttl):
                with self._lock:
                    self._confirmed_at[shard] = started
            else:
                self._lose(shard, token, "its lease is no longer ours (it expired, or Redis lost it)")

    def _lose(self, shard: int, token: int, reason: str) -> None:
        with self._lock:
            if self._leases.get(shard) != token:
                return
            del self._leases[shard]
            self._confirmed_at.pop(shard, None)
            self._shedding.discard(shard)
        log.warning("fleet: shard %d lost: %s", shard, reason)
        self._on_lost(shard, reason)

    def _release_stopped(self) -> None:
        with self._lock:
            stopped, self._stopped_shards = self._stopped_shards, set()
            # Only the lease the shard stopped under: a newer one of the same shard stays.
            released = {shard: self._leases.pop(shard) for shard, token in stopped if self._leases.get(shard) == token}
            for shard in released:
                self._confirmed_at.pop(shard, None)
                self._shedding.discard(shard)
        for shard, token in released.items():
            self.coordinator.release(shard, token)

    def _move_toward(self, target: int, started: float) -> None:
        with self._lock:
            keeping = [shard for shard in self._leases if shard not in self._shedding]
        if len(keeping) > target:
            shard = max(keeping)  # one per round: the others keep serving while it moves
            with self._lock:
                self._shedding.add(shard)
                shed_token = self._leases[shard]
            self._on_shed(shard, shed_token)
            return
        wanted = target - len(keeping)
        if wanted <= 0:
            return
        for shard, owner in sorted(self.coordinator.owners(self.shard_count).items()):
            if wanted == 0 or owner is not None or self._closing:
                continue
            token = self.coordinator.claim(shard, self.lease_ttl)
            if token is None:
                continue  # another member got there first
            try:
                self._prepare(shard, token)
            except Exception as exc:  # the store cannot fence: do not serve a shard it cannot protect
                log.warning("fleet: shard %d not started, its store failed: %s", shard, exc)
                self.coordinator.release(shard, token)
                raise
            with self._lock:
                self._leases[shard] = token
                self._confirmed_at[shard] = started
            wanted -= 1
            self._on_claimed(shard, token)
