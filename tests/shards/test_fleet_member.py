"""One fleet member's rounds against a real redis-server, stepped by hand: what it claims, loses and releases."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from qqproto import GatewayConfig, Health, LocalProtocolError, QQGatewayConnection
from qqproto_shards import FleetMember, FleetMismatch, shard_targets
from qqproto_shards._redis import RedisCoordinator
from transports._common import EventQueue
from transports.asyncio import Gateway
from transports.asyncio_shards import open_shards

TTL = 30.0


class Recorder:
    """A member whose news is written down instead of starting shards."""

    def __init__(self, url: str, shard_count: int, member_id: str, timeout: float = 2.0) -> None:
        self.coordinator = RedisCoordinator(url, "app", member_id=member_id, timeout=timeout)
        self.news: list[tuple[str, int, object]] = []
        self.now = 0.0  # the member's clock, moved by the test
        self.member = FleetMember(
            self.coordinator,
            shard_count,
            lease_ttl=TTL,
            on_claimed=lambda shard, token: self.news.append(("claimed", shard, token)),
            on_lost=lambda shard, reason: self.news.append(("lost", shard, reason)),
            on_shed=lambda shard, token: self.news.append(("shed", shard, token)),
            clock=lambda: self.now,
        )


@pytest.fixture
def recorder(redis_url: str, redis_client: redis.Redis) -> Iterator[Recorder]:
    made = Recorder(redis_url, 2, "m1")
    yield made
    made.coordinator.close()


def test_shares_are_as_even_as_the_count_allows() -> None:
    assert shard_targets(12, ["b", "a", "c"]) == {"a": 4, "b": 4, "c": 4}
    assert shard_targets(5, ["b", "a"]) == {"a": 3, "b": 2}
    assert sum(shard_targets(1000, [str(n) for n in range(7)]).values()) == 1000


def test_a_late_stop_of_an_old_lease_keeps_the_new_one(recorder: Recorder, redis_client: redis.Redis) -> None:
    recorder.member.step()
    first = {shard: token for kind, shard, token in recorder.news if kind == "claimed"}
    assert set(first) == {0, 1}
    redis_client.delete("qqproto:app:lease:0")  # the lease expired during a pause; nobody took it
    recorder.member.step()  # renewal finds it lost, and the same round claims it again
    again = [(shard, token) for kind, shard, token in recorder.news[2:] if kind == "claimed"]
    assert [kind for kind, _, _ in recorder.news[2:]] == ["lost", "claimed"] and again[0][0] == 0
    new_token = again[0][1]
    assert isinstance(new_token, int) and new_token > first[0]
    recorder.member.shard_stopped(0, first[0])  # the runtime's news of the old shard, arriving late
    recorder.member.step()
    assert recorder.coordinator.owners(2)[0] == ("m1", new_token), "the late stop released the newer lease"
    recorder.member.shard_stopped(0, new_token)
    recorder.member.step()
    assert recorder.news[-1][0] == "claimed", "a stopped shard's lease is released, then claimed again"


def test_a_member_over_its_share_hands_back_one_shard_per_round(redis_url: str, redis_client: redis.Redis) -> None:
    alone = Recorder(redis_url, 2, "m1")
    alone.member.step()
    assert len(alone.news) == 2
    newcomer = Recorder(redis_url, 2, "m2")
    newcomer.coordinator.join(TTL)
    alone.member.step()
    assert alone.news[-1] == ("shed", 1, alone.coordinator.owners(2)[1][1]), alone.news  # type: ignore[index]
    alone.member.step()
    assert alone.news[-1][0] == "shed" and len(alone.news) == 3, "a shard being handed on is not handed on twice"


def test_a_fleet_without_a_session_store_is_refused() -> None:
    config = GatewayConfig(app_id="1", client_secret="s", intents=1)
    with pytest.raises(LocalProtocolError, match="session store"):
        open_shards(config, range(4), coordinator=object())
    with pytest.raises(LocalProtocolError, match="whole fleet"):
        open_shards(config, [1, 2], shard_count=4, coordinator=object(), session_store=object())


def test_a_shard_made_on_the_loop_reports_health_before_it_starts() -> None:
    # A fleet makes a shard's gateway when its lease is won and starts it a moment later; the
    # health file is written in between.
    config = GatewayConfig(app_id="1", client_secret="s", intents=1)

    async def made_on_the_loop() -> Health:
        gateway = Gateway(QQGatewayConnection(config, random.Random(0)), config, None, EventQueue(16))
        return gateway.health()

    assert asyncio.run(made_on_the_loop()).connected is False


def test_a_worker_of_another_shard_count_cannot_join(
    recorder: Recorder, redis_url: str, redis_client: redis.Redis
) -> None:
    recorder.member.start()
    try:
        other = Recorder(redis_url, 3, "m2")
        with pytest.raises(FleetMismatch, match="runs 3 shards, but the fleet it would join runs 2"):
            other.member.start()
        assert other.news == [] and recorder.coordinator.members() == ["m1"], "it neither claimed nor stayed"
        other.coordinator.close()
    finally:
        recorder.member.stop()
    late = Recorder(redis_url, 3, "m3")
    redis_client.delete("qqproto:app:shard_count")  # as when the old fleet's last worker is long gone
    late.member.step()
    assert {shard for kind, shard, _ in late.news if kind == "claimed"} == {0, 1, 2}, "a new count, once alone"
    late.coordinator.close()


def test_a_fleet_of_another_count_appearing_mid_run_stops_claims_not_shards(
    recorder: Recorder, redis_client: redis.Redis
) -> None:
    recorder.member.step()
    redis_client.set("qqproto:app:shard_count", 3)  # Redis lost its data and another fleet's worker came first
    redis_client.delete("qqproto:app:lease:1")
    recorder.member.step()
    assert [kind for kind, _, _ in recorder.news] == ["claimed", "claimed", "lost"], "shard 1 was not claimed again"
    health = recorder.member.health()
    assert health.leases.keys() == {0} and "runs 3" in (health.coordinator_error or "")


def test_a_lease_not_confirmed_within_its_ttl_may_not_serve_until_renewed(recorder: Recorder) -> None:
    recorder.member.step()
    assert recorder.member.may_serve(0) and not recorder.member.may_serve(5)
    recorder.now = TTL - 0.1
    assert recorder.member.may_serve(0)
    recorder.now = TTL + 0.1  # the process slept past its lease: another may own the shard now
    assert not recorder.member.may_serve(0)
    recorder.member.step()  # the renewal confirms it is still ours
    assert recorder.member.may_serve(0)


def test_while_redis_is_down_running_shards_serve_for_two_rounds_after_each_failed_one(tmp_path: Path) -> None:
    from stores.redis_server import restartable_redis

    with restartable_redis(tmp_path) as server:
        made = Recorder(server.url, 2, "m1", timeout=0.5)
        made.member.step()
        server.stop()
        made.now = TTL + 1
        assert not made.member.may_serve(0), "a lease unconfirmed past its TTL, before any round failed"
        made.member.step()  # Redis unreachable: running shards keep running
        assert made.member.may_serve(0) and made.member.health().coordinator_error
        made.now += 2 * made.member.round - 0.1
        assert made.member.may_serve(0)
        made.now += 0.2  # no round has run since (a pause): the grace of the last failure is over
        assert not made.member.may_serve(0)
        server.start()
        made.member.step()
        assert made.member.may_serve(0) and made.member.health().coordinator_error is None
        made.coordinator.close()
