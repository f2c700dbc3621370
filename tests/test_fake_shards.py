"""The fake platform's rules for shards: the shard count, max_concurrency buckets, and who serves a shard."""

from __future__ import annotations

import random
from typing import Any

from test_fake_platform import Gateway, Net

from qqproto.testing import PlatformConfig
from qqproto.testing._control import Control

CONTROL_TOKEN = "shard-control"


def ready(gateway: Gateway) -> dict[str, object]:
    payload = gateway.payloads()[0]
    assert payload["t"] == "READY", payload
    return dict(payload["d"])


def with_control(config: PlatformConfig) -> Net:
    net = Net(config)
    net.platform.control = Control(net.platform, CONTROL_TOKEN, random.Random(1))
    return net


def control(net: Net, method: str, route: str, body: object = None) -> tuple[int, Any]:
    """One request to the control endpoint, as HTTP/1.1 bytes through the platform."""
    return net.http(method, f"/_qqproto/{route}", body, token=CONTROL_TOKEN, scheme="Bearer")


def test_the_shard_count_is_the_one_gateway_bot_reports() -> None:
    net = Net(PlatformConfig(shards_suggested=4, max_concurrency=4))
    token = net.token()
    assert net.http("GET", "/gateway/bot", token=token)[1]["shards"] == 4
    inside = Gateway(net)
    inside.identify(token, shard=[3, 4])
    assert ready(inside)["shard"] == [3, 4]
    beyond = Gateway(net)
    beyond.identify(token, shard=[4, 5])
    beyond.expect_close(4010)


def test_one_identify_per_bucket_per_window() -> None:
    net = Net(PlatformConfig(shards_suggested=4, max_concurrency=2))
    token = net.token()
    first = Gateway(net)
    first.identify(token, shard=[0, 4])
    ready(first)
    other_bucket = Gateway(net)
    other_bucket.identify(token, shard=[1, 4])
    ready(other_bucket)
    same_bucket = Gateway(net)
    same_bucket.identify(token, shard=[2, 4])  # 2 % 2 == 0 % 2: too soon
    same_bucket.expect_close(4008)
    assert "identify rate limit" in same_bucket.close_reason
    assert net.platform.counters.identifies_throttled == 1
    net.advance(5)
    again = Gateway(net)
    again.identify(token, shard=[2, 4])
    ready(again)
    assert net.platform.shards.identify_times == {0: [0.0], 1: [0.0], 2: [5.0]}


def test_the_window_is_configurable() -> None:
    net = Net(PlatformConfig(identify_window=0.5))
    token = net.token()
    net.bot(token)
    net.advance(0.5)
    net.bot(token)
    assert net.platform.counters.identifies_throttled == 0


def test_a_throttled_identify_spends_no_session_start() -> None:
    net = Net(PlatformConfig(session_start_total=2))
    token = net.token()
    net.bot(token)
    Gateway(net).identify(token)
    limit = net.http("GET", "/gateway/bot", token=token)[1]["session_start_limit"]
    assert limit["remaining"] == 1


def test_peak_live_counts_a_takeover_before_the_old_socket_is_closed() -> None:
    net = Net(PlatformConfig(shards_suggested=2, max_concurrency=2))
    token = net.token()
    first = Gateway(net)
    first.identify(token, shard=[0, 2])
    session_id = ready(first)["session_id"]
    second = Gateway(net)
    second.identify(token, shard=[1, 2])
    ready(second)
    assert net.platform.shards.peak_live == {0: 1, 1: 1}
    taker = Gateway(net)
    taker.resume(token, str(session_id), 1)  # while the first socket still serves shard 0
    first.expect_close(4009)
    assert net.platform.shards.peak_live == {0: 2, 1: 1}


def test_a_shard_served_in_turn_peaks_at_one() -> None:
    net = Net()
    token = net.token()
    first = Gateway(net)
    first.identify(token)
    session_id = str(ready(first)["session_id"])
    net.platform.connection_lost(first.conn_id, net.now)
    again = Gateway(net)
    again.resume(token, session_id, 1)
    assert again.payloads()[-1]["t"] == "RESUMED"
    assert net.platform.shards.peak_live == {0: 1}


def two_shards(net: Net, token: str) -> tuple[Gateway, Gateway, str]:
    """Shards 0 and 1 of 2, each in a session of its own; and shard 0's session id."""
    zero, one = Gateway(net), Gateway(net)
    zero.identify(token, shard=[0, 2])
    one.identify(token, shard=[1, 2])
    session_id = str(ready(zero)["session_id"])
    ready(one)
    return zero, one, session_id


def test_an_event_goes_into_the_session_of_the_shard_it_names() -> None:
    net = with_control(PlatformConfig(shards_suggested=2, max_concurrency=2))
    zero, one, _ = two_shards(net, net.token())
    assert control(net, "POST", "events", {"event_id": "to-one", "shard": 1}) == (200, {"seq": 2, "event_id": "to-one"})
    assert [(p["s"], p["id"]) for p in one.payloads()] == [(2, "to-one")] and zero.payloads() == []
    assert control(net, "POST", "events", {"event_id": "to-zero"})[0] == 200  # shard 0 by default
    assert [p["id"] for p in zero.payloads()] == ["to-zero"] and one.payloads() == []


def test_an_event_for_a_shard_without_a_session_is_answered_409() -> None:
    net = with_control(PlatformConfig(shards_suggested=2, max_concurrency=2))
    zero = Gateway(net)
    zero.identify(net.token(), shard=[0, 2])
    ready(zero)
    status, body = control(net, "POST", "events", {"shard": 1})
    assert status == 409 and "shard 1 has no session" in body["message"]
    assert zero.payloads() == [] and net.platform.counters.events_undeliverable == 1


def test_the_counters_report_every_shard_below_the_limit() -> None:
    net = with_control(PlatformConfig(shards_suggested=3, max_concurrency=3))
    token = net.token()
    zero, two = Gateway(net), Gateway(net)
    zero.identify(token, shard=[0, 3])
    net.advance(1.5)
    two.identify(token, shard=[2, 3])
    ids = {"0": ready(zero)["session_id"], "1": None, "2": ready(two)["session_id"]}
    control(net, "POST", "events", {"shard": 2})
    assert control(net, "GET", "counters")[1]["shards"] == {
        "live": {"0": 1, "1": 0, "2": 1},
        "peak_live": {"0": 1, "1": 0, "2": 1},
        "identifies": {"0": 1, "1": 0, "2": 1},
        "identify_times": {"0": [0.0], "1": [], "2": [1.5]},
        "max_identifies_per_window": 2,
        "sessions": ids,
        "last_seq": {"0": 1, "1": None, "2": 2},
    }
    net.platform.connection_lost(two.conn_id, net.now)
    assert control(net, "POST", "events", {"shard": 2})[0] == 200  # logged for a resume, sent to nobody
    shards = control(net, "GET", "counters")[1]["shards"]
    assert shards["live"] == {"0": 1, "1": 0, "2": 0} and shards["sessions"] == ids  # detached, still resumable
    assert shards["last_seq"] == {"0": 1, "1": None, "2": 3}


def identify_at(net: Net, token: str, times_and_shards: list[tuple[float, int]], count: int) -> None:
    for at, shard_id in times_and_shards:
        net.advance(at - net.now)
        gateway = Gateway(net)
        gateway.identify(token, shard=[shard_id, count])
        ready(gateway)


def test_max_identifies_per_window_counts_every_bucket_within_one_window() -> None:
    net = with_control(PlatformConfig(shards_suggested=4, max_concurrency=2))
    identify_at(net, net.token(), [(0, 0), (3, 1), (5, 2), (8, 3)], 4)  # any 5 s holds two
    assert control(net, "GET", "counters")[1]["shards"]["max_identifies_per_window"] == 2


def test_max_identifies_per_window_counts_a_span_without_its_end() -> None:
    net = with_control(PlatformConfig(shards_suggested=2))
    identify_at(net, net.token(), [(0, 0), (5, 1)], 2)  # one window apart: never two within one
    assert control(net, "GET", "counters")[1]["shards"]["max_identifies_per_window"] == 1


def test_reset_peaks_starts_again_from_the_sockets_serving_now() -> None:
    net = with_control(PlatformConfig(shards_suggested=2, max_concurrency=2))
    token = net.token()
    _, other, session_id = two_shards(net, token)
    Gateway(net).resume(token, session_id, 1)  # a takeover: shard 0 served twice for a moment
    assert control(net, "GET", "counters")[1]["shards"]["peak_live"] == {"0": 2, "1": 1}
    net.platform.connection_lost(other.conn_id, net.now)
    assert control(net, "POST", "shards/reset_peaks") == (200, {"peak_live": {"0": 1, "1": 0}})
    assert control(net, "GET", "counters")[1]["shards"]["peak_live"] == {"0": 1, "1": 0}
