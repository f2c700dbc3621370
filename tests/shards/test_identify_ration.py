"""The in-process identify gate: buckets, the window from the Identify, and the daily budget."""

from __future__ import annotations

import pytest

from qqproto import SessionStartLimit
from qqproto_shards import IdentifyRation


def limit(remaining: int = 1000, reset_at: float = 86400.0, max_concurrency: int = 1) -> SessionStartLimit:
    return SessionStartLimit(total=1000, remaining=remaining, reset_at=reset_at, max_concurrency=max_concurrency)


def ration(max_concurrency: int = 1, **kw: float) -> IdentifyRation:
    gate = IdentifyRation(**kw)
    gate.learn(limit(max_concurrency=max_concurrency), 0.0)
    return gate


def test_one_turn_per_bucket_and_the_window_counts_from_the_identify_done() -> None:
    gate = ration(max_concurrency=2)
    for shard in range(4):
        gate.request(shard, 0.0)
    assert gate.grants(0.0) == [0, 1]
    assert gate.grants(0.0) == []  # both buckets held until their identifies are done with
    gate.done(0, 0.5)
    gate.done(1, 2.0)
    assert gate.next_due(2.0) == 5.5
    assert gate.grants(5.4) == []
    assert gate.grants(5.5) == [2]
    assert gate.grants(6.9) == []
    assert gate.grants(7.0) == [3]


def test_shards_of_one_bucket_go_in_the_order_they_asked() -> None:
    gate = ration(max_concurrency=1)
    for shard in (3, 1, 2):
        gate.request(shard, 0.0)
    order = []
    now = 0.0
    while len(order) < 3:
        granted = gate.grants(now)
        order += granted
        for shard in granted:
            gate.done(shard, now)
        due = gate.next_due(now)
        now = due if due is not None else now
    assert order == [3, 1, 2]
    assert now == 10.0


def test_a_turn_given_back_without_an_identify_does_not_wait_the_window() -> None:
    gate = ration()
    gate.request(0, 0.0)
    gate.request(1, 0.0)
    assert gate.grants(0.0) == [0]
    gate.request(0, 3.0)  # its connection failed before Hello and it asks again
    assert gate.grants(3.0) == [1]


def test_a_shard_that_stops_holding_its_turn_uses_it_up() -> None:
    gate = ration()
    gate.request(0, 0.0)
    gate.request(1, 0.0)
    assert gate.grants(0.0) == [0]
    gate.withdraw(0, 3.0)  # stopped while permitted: its Identify may be out
    assert gate.grants(3.0) == [] and gate.next_due(3.0) == 8.0
    assert gate.grants(8.0) == [1]
    gate.withdraw(1, 8.5)
    gate.request(2, 8.5)
    assert gate.grants(8.5) == [] and gate.grants(13.5) == [2]


def test_a_shard_that_stops_while_waiting_costs_no_turn() -> None:
    gate = ration()
    gate.request(0, 0.0)
    gate.request(1, 0.0)
    assert gate.grants(0.0) == [0]
    gate.done(0, 0.5)
    gate.withdraw(1, 1.0)  # it never held the turn
    gate.request(2, 1.0)
    assert gate.grants(5.5) == [2]


def test_the_daily_budget_runs_out_and_the_gate_waits_for_the_reset() -> None:
    gate = IdentifyRation()
    gate.learn(limit(remaining=2, reset_at=100.0, max_concurrency=4), 0.0)
    for shard in range(4):
        gate.request(shard, 0.0)
    assert gate.grants(0.0) == [0, 1]
    health = gate.health(1.0)
    assert health.exhausted and health.exhausted_until == 100.0 and health.waiting == 2
    assert gate.next_due(1.0) == 100.0
    assert gate.grants(99.9) == []
    assert gate.grants(100.0) == [2, 3]
    assert not gate.health(100.0).exhausted and gate.health(100.0).remaining == 998


def test_an_older_report_cannot_give_back_starts_already_granted() -> None:
    gate = IdentifyRation()
    gate.learn(limit(remaining=2, reset_at=100.0, max_concurrency=2), 0.0)
    gate.request(0, 0.0)
    gate.request(1, 0.0)
    assert gate.grants(0.0) == [0, 1]
    gate.learn(limit(remaining=2, reset_at=100.0, max_concurrency=2), 1.0)  # fetched before the grants
    assert gate.health(1.0).remaining == 0
    gate.learn(limit(remaining=1000, reset_at=90000.0, max_concurrency=2), 200.0)  # a new day
    assert gate.health(200.0).remaining == 1000


def test_learning_max_concurrency_rebuckets_the_waiting_shards() -> None:
    gate = IdentifyRation()
    gate.request(0, 0.0)
    gate.request(1, 0.0)
    gate.learn(limit(max_concurrency=2), 0.0)
    assert sorted(gate.grants(0.0)) == [0, 1]


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="window"):
        IdentifyRation(window=-1)
    with pytest.raises(ValueError, match="shard_id"):
        ration().request(-1, 0.0)


def test_a_new_max_concurrency_waits_out_the_last_turn_of_the_old_buckets() -> None:
    gate = IdentifyRation()
    gate.request(0, 0.0)
    assert gate.grants(0.0) == [0]
    gate.done(0, 1.0)
    gate.learn(limit(max_concurrency=3), 2.0)
    gate.request(2, 2.0)
    assert gate.grants(2.0) == [] and gate.next_due(2.0) == 6.0
    assert gate.grants(6.0) == [2]
