"""The bot process of a simulation: its connection, the application's progress, and its restarts."""

from __future__ import annotations

import random
from collections import Counter

from .._config import GatewayConfig
from .._connection import QQGatewayConnection
from .._events import Action, Dispatch
from .._sending import OutgoingMessage, Scene
from .._session_state import SessionProgress

__all__ = ["REPLY_SCENES", "BotProcess"]

#: The message events a bot replies to, and where its reply goes.
REPLY_SCENES = {"GROUP_AT_MESSAGE_CREATE": Scene.GROUP, "C2C_MESSAGE_CREATE": Scene.C2C}

#: Seconds a graceful deploy gives the old process to close before it exits.
EXIT_AFTER_CLOSE = 1.0
#: Each process's sockets get ids in a range of their own, so the platform never mixes them up.
SOCKETS_PER_PROCESS = 1_000_000


class BotProcess:
    """One process after another: each restart builds a new connection that resumes the saved session.

    The application finishes each event as it is handed over, and its session store saves at
    once, so the store always holds ``progress``; a crash strikes while an event is in hand.
    """

    def __init__(self, config: GatewayConfig, seed: int) -> None:
        self._config = config
        self._seeds = random.Random(seed)
        self.generation = 0
        self.client = QQGatewayConnection(config, rng=random.Random(self._seeds.getrandbits(64)))
        self.alive = True
        self.progress = SessionProgress(config.shard)
        self.handed: Counter[str] = Counter()
        self.finished: Counter[str] = Counter()
        self.redelivered_after_crash = 0
        self.crash_pending: float | None = None
        #: The content of every reply the application asked for, and how many failed for good.
        self.replies_requested: set[str] = set()
        self.replies_failed = 0
        self._interrupted: set[str] = set()
        self._retired: Counter[str] = Counter()

    @property
    def socket_base(self) -> int:
        """Added to this process's socket ids to name its connections at the platform."""
        return self.generation * SOCKETS_PER_PROCESS

    def hand(self, event: Action) -> bool:
        """Hand ``event`` to the application; False if the process died with it in hand."""
        if isinstance(event, Dispatch):
            event_id = event.event_id
            if event_id is not None:
                self.handed[event_id] += 1
                if self.crash_pending is not None:
                    self._interrupted.add(event_id)
                    self.die()
                    return False
                self.finished[event_id] += 1
                if event_id in self._interrupted:
                    self._interrupted.discard(event_id)
                    self.redelivered_after_crash += 1
        self.progress.finished(event)
        return True

    def reply_to(self, dispatch: Dispatch, scene: Scene, received_at: float) -> OutgoingMessage:
        """The application's answer to a message it received at ``received_at``, marked with its event id."""
        data = dispatch.data
        author = data.get("author") if isinstance(data.get("author"), dict) else {}
        target = data.get("group_openid") if scene is Scene.GROUP else author.get("user_openid")
        marker = f"re:{dispatch.event_id}"
        self.replies_requested.add(marker)
        body = {"content": marker, "msg_type": 0}
        return OutgoingMessage(scene, str(target), body, msg_id=data.get("id"), received_at=received_at)

    def die(self) -> None:
        """The process is gone: its connection gets no more input, and its figures are kept."""
        self.alive = False
        self.crash_pending = None
        client = self.client
        self._retired.update(
            token_fetches=client.token_fetches,
            gateway_url_fetches=client.gateway_url_fetches,
            gateway_cache_invalidations=client.gateway_cache_invalidations,
        )

    def restart(self, now: float) -> None:
        """A new process: a new connection that resumes what the store holds, then starts."""
        self.generation += 1
        self.client = QQGatewayConnection(self._config, rng=random.Random(self._seeds.getrandbits(64)))
        saved = self.progress.state(now)
        self.progress = SessionProgress(self._config.shard, saved)
        if saved is not None:
            self.client.restore_session(saved, now)
        self.alive = True
        self.client.start(now)

    def total(self, figure: str) -> int:
        """A counter of the connections, summed over every process so far."""
        current = int(getattr(self.client, figure)) if self.alive else 0
        return self._retired[figure] + current
