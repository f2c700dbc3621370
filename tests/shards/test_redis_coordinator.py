"""The Redis coordinator: leases with fencing tokens, fleet membership and the shared identify ration."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from qqproto_shards import CoordinatorUnavailable, IdentifyTurn, RedisCoordinator

WAIT = 10.0
SHORT = 0.2  # a lease or a turn that a test lets run out


@pytest.fixture
def make(redis_client: redis.Redis, redis_url: str) -> Iterator[Callable[..., RedisCoordinator]]:
    """Coordinators of one app on the test's emptied database, closed afterwards."""
    made: list[RedisCoordinator] = []

    def coordinator(member_id: str, app_id: str = "app") -> RedisCoordinator:
        made.append(RedisCoordinator(redis_url, app_id, member_id=member_id))
        return made[-1]

    yield coordinator
    for each in made:
        each.close()


def wait_for(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes (Redis expires keys on its own clock)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# -- leases ------------------------------------------------------------------------------


def test_a_free_shard_is_claimed_once_and_shows_its_owner(make: Callable[..., RedisCoordinator]) -> None:
    a, b = make("a"), make("b")
    token = a.claim(3, 30)
    assert token is not None
    assert a.claim(3, 30) is None, "held by itself: a second claim must not grant a second token"
    assert b.claim(3, 30) is None
    assert a.owners(5) == {0: None, 1: None, 2: None, 3: ("a", token), 4: None}


def test_renew_extends_only_the_exact_lease(make: Callable[..., RedisCoordinator]) -> None:
    a, b = make("a"), make("b")
    token = a.claim(0, SHORT)
    assert token is not None
    assert a.renew(0, token, 30) is True
    assert not wait_for(lambda: a.owners(1)[0] is None, timeout=3 * SHORT), "a renewed lease must outlive its first ttl"
    assert a.renew(0, token + 1, 30) is False, "a token that was never granted renews nothing"
    assert b.renew(0, token, 30) is False, "another member with the same token renews nothing"


def test_release_frees_the_shard_and_the_next_claim_gets_a_newer_token(make: Callable[..., RedisCoordinator]) -> None:
    a, b = make("a"), make("b")
    first = a.claim(0, 30)
    assert first is not None
    assert b.release(0, first) is False and a.owners(1)[0] == ("a", first)
    assert a.release(0, first) is True
    assert a.owners(1)[0] is None
    assert a.release(0, first) is False, "releasing twice deletes nothing the second time"
    second = b.claim(0, 30)
    assert second is not None and second > first


def test_tokens_grow_across_expiry_and_takeover_and_the_former_owner_is_locked_out(
    make: Callable[..., RedisCoordinator],
) -> None:
    a, b = make("a"), make("b")
    tokens = []
    for _ in range(3):
        token = a.claim(7, 30)
        assert token is not None
        tokens.append(token)
        assert a.release(7, token)
    stale = a.claim(7, SHORT)
    assert stale is not None
    assert wait_for(lambda: b.claim(7, 30) is not None), "an expired lease must be free to take over"
    owner = b.owners(8)[7]
    assert owner is not None and owner[0] == "b"
    tokens += [stale, owner[1]]
    assert tokens == sorted(set(tokens)), f"tokens must strictly grow across grants, got {tokens}"
    assert a.renew(7, stale, 30) is False, "the former owner's renewal must report the lease lost"
    assert a.release(7, stale) is False
    assert b.owners(8)[7] == owner, "the former owner's renew or release must leave the new lease alone"


def test_each_app_has_its_own_keys_under_the_prefix(
    make: Callable[..., RedisCoordinator], redis_client: redis.Redis
) -> None:
    assert make("a", app_id="app1").claim(0, 30) is not None
    assert make("a", app_id="app2").claim(0, 30) is not None, "another bot's shard 0 is another lease"
    make("a", app_id="app1").join(30)
    keys = [key.decode() for key in redis_client.keys("*")]
    assert keys and all(key.startswith(("qqproto:app1:", "qqproto:app2:")) for key in keys), keys


CLAIMER = """
import json, sys, random
import redis
from qqproto_shards import RedisCoordinator
url, member = sys.argv[1], sys.argv[2]
redis.Redis.from_url(url).blpop(["go:" + member], timeout=30)
coordinator = RedisCoordinator(url, "app", member_id=member)
won = {}
for _ in range(20):
    shards = list(range(12))
    random.shuffle(shards)
    for shard in shards:
        token = coordinator.claim(shard, 60)
        if token is not None:
            won[shard] = token
print(json.dumps(won))
"""


def test_two_processes_racing_for_twelve_shards_leave_each_with_exactly_one_owner(
    make: Callable[..., RedisCoordinator], redis_client: redis.Redis, redis_url: str
) -> None:
    racers = {
        member: subprocess.Popen(
            [sys.executable, "-c", CLAIMER, redis_url, member],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for member in ("p1", "p2")
    }
    redis_client.rpush("go:p1", 1)
    redis_client.rpush("go:p2", 1)
    won: dict[str, dict[int, int]] = {}
    for member, racer in racers.items():
        out, err = racer.communicate(timeout=60)
        assert racer.returncode == 0, err
        won[member] = {int(shard): token for shard, token in json.loads(out).items()}
    assert not set(won["p1"]) & set(won["p2"]), f"a shard granted to both: {won}"
    assert set(won["p1"]) | set(won["p2"]) == set(range(12))
    owners = make("reader").owners(12)
    assert owners == {shard: (m, won[m][shard]) for m in won for shard in won[m]}


# -- membership ----------------------------------------------------------------------------


def test_members_are_counted_until_they_leave_or_expire(make: Callable[..., RedisCoordinator]) -> None:
    a, b, c = make("a"), make("b"), make("c")
    assert a.join(30) == 1
    assert b.join(30) == 2
    assert c.join(SHORT) == 3
    assert a.members() == ["a", "b", "c"]
    assert wait_for(lambda: a.members() == ["a", "b"]), "a member that stops refreshing must drop out"
    assert a.join(30) == 2, "join counts live members only"
    b.leave()
    assert a.members() == ["a"]
    assert a.join(30) == 1, "refreshing oneself does not count twice"


# -- the identify ration -----------------------------------------------------------------


def ask(
    coordinator: RedisCoordinator,
    bucket: int,
    holder: str,
    hold: float = 30,
    remaining: int | None = None,
    reset_after: float | None = None,
) -> IdentifyTurn:
    return coordinator.try_identify(bucket, holder, hold=hold, remaining=remaining, reset_after=reset_after)


def test_one_turn_per_bucket_across_coordinators(make: Callable[..., RedisCoordinator]) -> None:
    a, b = make("a"), make("b")
    assert ask(a, 0, "a:0") == IdentifyTurn(granted=True, retry_after=0, exhausted=False)
    refused = ask(b, 0, "b:2")
    assert not refused.granted and not refused.exhausted
    assert 29 < refused.retry_after <= 30, "the wait is what is left of the holder's turn"
    assert ask(b, 1, "b:1").granted, "another bucket has its own turn"


def test_a_holder_asking_again_before_identifying_holds_its_turn_again(make: Callable[..., RedisCoordinator]) -> None:
    a, b = make("a"), make("b")
    assert ask(a, 0, "a:0", hold=30, remaining=5, reset_after=3600).granted
    assert ask(a, 0, "a:0", hold=30, remaining=5, reset_after=3600).granted, "its connect failed: it asks again"
    assert not ask(b, 0, "b:2").granted
    assert ask(b, 1, "b:1", remaining=5, reset_after=3600).granted
    assert ask(b, 2, "b:2", remaining=5, reset_after=3600).granted
    assert ask(b, 3, "b:3", remaining=5, reset_after=3600).granted
    assert ask(b, 4, "b:4", remaining=5, reset_after=3600).granted
    assert ask(b, 5, "b:5", remaining=5, reset_after=3600).exhausted, "holding again spent no second start"


def test_a_used_turn_is_neither_held_again_nor_given_back(make: Callable[..., RedisCoordinator]) -> None:
    a = make("a")
    assert ask(a, 0, "a:0").granted
    a.identify_done(0, "a:0", 30)
    assert not ask(a, 0, "a:0").granted, "its Identify is done: the window holds for its holder too"
    a.give_back(0, "a:0")
    assert not ask(make("b"), 0, "b:0").granted, "a used turn cannot be given back"


def test_identify_done_re_arms_the_turn_from_then(make: Callable[..., RedisCoordinator]) -> None:
    a, b = make("a"), make("b")
    assert ask(a, 0, "a:0", hold=30).granted
    b.identify_done(0, "b:2", 0.001)  # not the holder: changes nothing
    refused = ask(b, 0, "b:2")
    assert not refused.granted and refused.retry_after > 29
    a.identify_done(0, "a:0", 3 * SHORT)
    refused = ask(b, 0, "b:2")
    assert not refused.granted and refused.retry_after <= 3 * SHORT, (
        "the window counts from the Identify being done with"
    )
    assert wait_for(lambda: ask(b, 0, "b:2").granted), "the turn must come round once the window passed"


def test_a_turn_given_back_is_free_at_once(make: Callable[..., RedisCoordinator]) -> None:
    a, b = make("a"), make("b")
    assert ask(a, 0, "a:0").granted
    b.give_back(0, "b:2")  # not the holder: frees nothing
    assert not ask(b, 0, "b:2").granted
    a.give_back(0, "a:0")
    assert ask(b, 0, "b:2").granted


CRASHING_HOLDER = """
import os, sys
from qqproto_shards import RedisCoordinator
turn = RedisCoordinator(sys.argv[1], "app", member_id="crasher").try_identify(
    0, "crasher:0", hold=float(sys.argv[2]), remaining=None, reset_after=None)
print(turn.granted, flush=True)
os._exit(9)  # dies holding the turn, before its Identify goes out
"""


def test_a_crashed_holders_turn_frees_itself_after_hold(make: Callable[..., RedisCoordinator], redis_url: str) -> None:
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_HOLDER, redis_url, str(SHORT)], capture_output=True, text=True, timeout=60
    )
    assert crashed.returncode == 9 and crashed.stdout.strip() == "True", crashed.stderr
    b = make("b")
    assert wait_for(lambda: ask(b, 0, "b:0").granted, timeout=20 * SHORT)


def test_the_daily_budget_counts_down_across_coordinators(make: Callable[..., RedisCoordinator]) -> None:
    a, b = make("a"), make("b")
    assert ask(a, 0, "a:0", remaining=3, reset_after=60).granted
    assert ask(b, 1, "b:1").granted, "a coordinator that reports nothing spends from the shared counter"
    assert ask(b, 2, "b:2", remaining=3, reset_after=60).granted, "a report no lower than the counter changes nothing"
    spent = ask(a, 3, "a:3")
    assert not spent.granted and spent.exhausted
    assert 59 < spent.retry_after <= 60, "an exhausted budget waits for its reset"
    assert ask(b, 3, "b:3", remaining=50, reset_after=1).exhausted, "a higher report never raises the counter"


def test_a_lower_report_lowers_the_counter_and_keeps_its_reset(make: Callable[..., RedisCoordinator]) -> None:
    a = make("a")
    assert ask(a, 0, "a:0", remaining=10, reset_after=60).granted
    assert ask(a, 1, "a:1", remaining=1, reset_after=5).granted
    spent = ask(a, 2, "a:2")
    assert spent.exhausted and 59 < spent.retry_after <= 60


def test_the_budget_resets_when_its_time_runs_out(make: Callable[..., RedisCoordinator]) -> None:
    a = make("a")
    spent = ask(a, 0, "a:0", remaining=0, reset_after=3 * SHORT)
    assert not spent.granted and spent.exhausted and 0 < spent.retry_after <= 3 * SHORT
    assert wait_for(lambda: ask(a, 0, "a:0").granted), "after the reset, starts are not refused as spent"


# -- bad input and a missing Redis -------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.claim(-1, 30), "shard must be an int >= 0"),
        (lambda c: c.claim(True, 30), "shard must be an int >= 0"),
        (lambda c: c.claim(0, 0), "ttl must be a number of seconds > 0"),
        (lambda c: c.renew(0, "1", 30), "token must be an int >= 0"),
        (lambda c: c.join(float("nan")), "ttl must be a number of seconds > 0"),
        (lambda c: c.owners(-2), "shard_count must be an int >= 0"),
        (lambda c: c.try_identify(0, "", hold=5, remaining=None, reset_after=None), "holder must be a non-empty"),
        (lambda c: c.try_identify(0, "h", hold=5, remaining=3, reset_after=None), "pass both or neither"),
        (lambda c: c.try_identify(0, "h", hold=5, remaining=-1, reset_after=9), "remaining must be an int >= 0"),
        (lambda c: c.try_identify(0, "h", hold=5, remaining=1, reset_after=-9), "reset_after must be a number"),
        (lambda c: c.identify_done(-1, "h", 5), "bucket must be an int >= 0"),
    ],
)
def test_bad_arguments_are_named(
    make: Callable[..., RedisCoordinator], call: Callable[[RedisCoordinator], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        call(make("a"))


def test_bad_app_or_member_ids_are_named(redis_url: str) -> None:
    with pytest.raises(ValueError, match="app_id must be a non-empty string"):
        RedisCoordinator(redis_url, "")
    with pytest.raises(ValueError, match="member_id must be a non-empty printable string"):
        RedisCoordinator(redis_url, "app", member_id="a\nb")


def test_the_default_member_id_names_the_host_and_process(redis_url: str) -> None:
    first, second = RedisCoordinator(redis_url, "app"), RedisCoordinator(redis_url, "app")
    assert first.member_id.startswith(f"{socket.gethostname()}:")
    assert first.member_id != second.member_id, "two coordinators in one process are two members"


def test_nothing_listening_is_named_without_the_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        coordinator = RedisCoordinator(f"redis://:hunter2@127.0.0.1:{port}/0", "app", timeout=0.5)
        with pytest.raises(CoordinatorUnavailable) as caught:
            coordinator.ping()
        assert f"redis://127.0.0.1:{port}/0" in str(caught.value)
        with pytest.raises(CoordinatorUnavailable, match="while claiming shard 4") as caught:
            coordinator.claim(4, 30)
        assert "hunter2" not in str(caught.value)


def test_a_redis_that_refuses_is_unavailable_by_name(redis_client: redis.Redis, redis_url: str) -> None:
    redis_client.acl_setuser("pinger", enabled=True, passwords=["+secret"], commands=["+ping"], keys=["*"])
    try:
        limited = RedisCoordinator(redis_url.replace("redis://", "redis://pinger:secret@"), "app", member_id="a")
        limited.ping()
        with pytest.raises(CoordinatorUnavailable, match=r"refused claiming shard 4: .*no permissions") as caught:
            limited.claim(4, 30)
        assert "secret" not in str(caught.value)
        limited.close()
    finally:
        redis_client.acl_deluser("pinger")


@pytest.mark.usefixtures("redis_url")
def test_redis_going_away_raises_unavailable_and_coming_back_works_again(tmp_path: Path) -> None:
    from stores.redis_server import restartable_redis

    with restartable_redis(tmp_path) as server:
        coordinator = RedisCoordinator(server.url, "app", member_id="a", timeout=0.5)
        token = coordinator.claim(0, 30)
        assert token is not None
        server.stop()
        for call in (lambda: coordinator.renew(0, token, 30), lambda: coordinator.join(30), coordinator.members):
            with pytest.raises(CoordinatorUnavailable, match=server.url.removeprefix("redis://")):
                call()
        server.start()
        assert coordinator.claim(0, 30) is not None
        coordinator.close()


def test_a_client_passed_in_is_used_named_and_left_open(redis_client: redis.Redis, redis_url: str) -> None:
    coordinator = RedisCoordinator(redis_client, "app", member_id="a")
    assert coordinator.claim(0, 30) is not None
    assert redis_url in repr(coordinator)
    coordinator.close()
    assert redis_client.ping(), "closing the coordinator must not close a client it was given"


def test_tokens_keep_growing_after_redis_loses_its_data(
    make: Callable[..., RedisCoordinator], redis_client: redis.Redis
) -> None:
    a = make("a")
    before = a.claim(0, 30)
    assert before is not None
    redis_client.flushdb()  # a restart without persistence
    after = make("b").claim(0, 30)
    assert after is not None and after > before, "a fence raised with the old token would refuse the new owner"
