"""The fake platform's rules for shards: the shard count, max_concurrency buckets, and who serves a shard."""

from __future__ import annotations

from test_fake_platform import Gateway, Net

from qqproto.testing import PlatformConfig


def ready(gateway: Gateway) -> dict[str, object]:
    payload = gateway.payloads()[0]
    assert payload["t"] == "READY", payload
    return dict(payload["d"])


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
