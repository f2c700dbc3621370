"""``qqproto serve-fake`` driven as another program would: a child process, HTTPS to its control endpoint, a client."""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from test_cli import lines_of, wait_for

from qqproto import Dispatch, GatewayConfig, Ready, ReconnectScheduled, Resumed
from qqproto_cli import serve_fake
from transports.threaded import GatewayThread
from transports.threaded_shards import ShardsThread

TOKEN = "control-token-for-tests"
DEADLINE = 20.0


class ServedFake:
    """A running ``qqproto serve-fake`` child: what it printed, and its control endpoint."""

    def __init__(self, *options: str) -> None:
        command = [sys.executable, "-m", "qqproto_cli", "serve-fake", "--heartbeat-ms", "1000", *options]
        self.child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.child.stdout is not None
        lines = lines_of(self.child.stdout)
        self.printed: dict[str, str] = {}
        while "control_token" not in self.printed:
            key, _, value = wait_for(lines, lambda line: True).partition(" ")
            self.printed[key] = value.strip()
        self.ssl_context = ssl.create_default_context(cafile=self.printed["ca_pem_path"])

    def control(
        self, method: str, route: str, body: dict[str, Any] | None = None, token: str = TOKEN
    ) -> tuple[int, Any]:
        """One request to the control endpoint; the status and the decoded answer."""
        return self._request(method, self.printed["control_url"] + route, body, f"Bearer {token}")

    def api(self, method: str, path: str, body: dict[str, Any] | None = None, token: str = "") -> tuple[int, Any]:
        """One request to the platform's own API, as a bot makes it; the status and the decoded answer."""
        return self._request(method, self.printed["api_base"] + path, body, f"QQBot {token}")

    def _request(self, method: str, where: str, body: dict[str, Any] | None, authorization: str) -> tuple[int, Any]:
        url = urlsplit(where)
        conn = http.client.HTTPSConnection(url.hostname or "", url.port, context=self.ssl_context, timeout=DEADLINE)
        try:
            headers = {"Authorization": authorization, "Content-Type": "application/json"}
            conn.request(method, url.path, json.dumps(body).encode() if body is not None else None, headers)
            answer = conn.getresponse()
            return answer.status, json.loads(answer.read())
        finally:
            conn.close()

    def client_config(self) -> GatewayConfig:
        return GatewayConfig(
            app_id=self.printed["app_id"],
            client_secret=self.printed["client_secret"],
            api_base=self.printed["api_base"],
            token_url=self.printed["token_url"],
            backoff_base=0.05,
            backoff_cap=0.5,
            quick_disconnect_limit=100,  # faults a second apart would otherwise call for the long cooldown
        )

    def stop(self) -> int:
        """SIGTERM, as a service manager would send; the exit status."""
        self.child.terminate()
        return self.child.wait(timeout=DEADLINE)


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[ServedFake]:
    """serve-fake with the test's options (``indirect`` parametrisation), or none."""
    fake = ServedFake("--control-token", TOKEN, *getattr(request, "param", ()))
    try:
        yield fake
    finally:
        fake.stop()


def next_event(events: Iterator[Any], predicate: Callable[[Any], bool]) -> Any:
    """Read the client's events until one satisfies ``predicate``, within the deadline."""
    deadline = time.monotonic() + DEADLINE
    for event in events:
        if predicate(event):
            return event
        assert time.monotonic() < deadline, "the event never came"
    raise AssertionError("the client stopped")


def test_sigterm_stops_it_cleanly() -> None:
    fake = ServedFake()
    assert fake.stop() == 0
    assert not os.path.exists(fake.printed["ca_pem_path"])


def test_the_control_endpoint_refuses_a_wrong_token_and_says_what_is_wrong(served: ServedFake) -> None:
    assert served.control("GET", "counters", token="guess")[0] == 401
    status, body = served.control("POST", "events", {"event_id": "nobody-there"})
    assert status == 409 and "no session" in body["message"]
    status, body = served.control("POST", "faults", {"fault": "earthquake"})
    assert status == 400 and "reconnect" in body["message"]
    assert served.control("GET", "nothing-here")[0] == 404


def test_a_client_in_another_process_gets_pushed_events_and_injected_faults(served: ServedFake) -> None:
    gateway = GatewayThread(served.client_config(), served.ssl_context)
    gateway.start()
    try:
        events = gateway.events()
        ready = next_event(events, lambda e: isinstance(e, Ready))
        status, pushed = served.control("POST", "events", {"event_type": "C2C_MESSAGE_CREATE", "event_id": "ctl-1"})
        assert status == 200
        dispatch = next_event(events, lambda e: isinstance(e, Dispatch))
        assert dispatch.event_id == "ctl-1" and dispatch.seq == pushed["seq"]
        for fault, cause in [("close", "close_4009"), ("reconnect", "reconnect_request"), ("drop", "connection_lost")]:
            assert served.control("POST", "faults", {"fault": fault})[0] == 200
            scheduled = next_event(events, lambda e: isinstance(e, ReconnectScheduled))
            assert scheduled.cause == cause
            assert next_event(events, lambda e: isinstance(e, Resumed)).session_id == ready.session_id
        status, counters = served.control("GET", "counters")
    finally:
        gateway.stop()
    assert status == 200
    assert counters["faults_struck"] == {"close with a code": 1, "op 7": 1, "TCP drop": 1}
    assert counters["resumes_ok"] == 3 and counters["identifies"] == 1
    assert counters["events_pushed"] == 1 and counters["events_sent"] == 1


@pytest.mark.parametrize("served", [("--events-per-second", "50")], indirect=True)
def test_events_flow_without_anyone_pushing_them(served: ServedFake) -> None:
    gateway = GatewayThread(served.client_config(), served.ssl_context)
    gateway.start()
    try:
        events = gateway.events()
        next_event(events, lambda e: isinstance(e, Ready))
        seqs = [next_event(events, lambda e: isinstance(e, Dispatch)).seq for _ in range(50)]
        status, counters = served.control("GET", "counters")
    finally:
        gateway.stop()
    assert seqs == list(range(seqs[0], seqs[0] + 50))
    assert status == 200 and counters["events_pushed"] >= 50 and counters["faults_struck"] == {}


@pytest.mark.parametrize(
    "served", [("--shards", "3", "--max-concurrency", "3", "--events-per-second", "60")], indirect=True
)
def test_flowing_events_go_into_every_shard_in_turn(served: ServedFake) -> None:
    running = ShardsThread(served.client_config(), "auto", ssl_context=served.ssl_context)
    running.start()
    try:
        seen: dict[int, int] = {}
        for item in running.events():
            if isinstance(item.event, Dispatch):
                seen[item.shard] = seen.get(item.shard, 0) + 1
                if (len(seen) == 3 and min(seen.values()) >= 5) or sum(seen.values()) >= 300:
                    break
    finally:
        running.stop()
    assert sorted(seen) == [0, 1, 2] and min(seen.values()) >= 5, seen


@pytest.mark.parametrize("served", [("--plan", "hostile", "--plan-speed", "3600")], indirect=True)
def test_a_plan_strikes_its_faults_on_the_wall_clock(served: ServedFake) -> None:
    deadline = time.monotonic() + DEADLINE
    struck: dict[str, int] = {}
    while not {"op 7", "TCP drop", "half-open silence"} <= set(struck):
        assert time.monotonic() < deadline, struck
        time.sleep(0.1)
        try:
            status, counters = served.control("GET", "counters")
        except OSError:  # the plan's outages and drops shut the control endpoint's port too
            continue
        assert status == 200
        struck = counters["faults_struck"]


SHARD_OPTIONS = ("--shards", "2", "--max-concurrency", "2", "--identify-window", "60")


@pytest.mark.parametrize(
    "served",
    [("--shards", "12", "--max-concurrency", "4", "--session-starts", "30", "--starts-reset-after", "90")],
    indirect=True,
)
def test_the_shard_flags_are_what_gateway_bot_reports(served: ServedFake) -> None:
    credentials = {"appId": served.printed["app_id"], "clientSecret": served.printed["client_secret"]}
    token = served.api("POST", "/app/getAppAccessToken", credentials)[1]["access_token"]
    status, body = served.api("GET", "/gateway/bot", token=token)
    assert status == 200 and body["shards"] == 12
    assert body["session_start_limit"] == {"total": 30, "remaining": 30, "reset_after": 90000, "max_concurrency": 4}


def parsed(*options: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve_fake.add_parser(parser.add_subparsers())
    return parser.parse_args(["serve-fake", *options])


def test_the_shard_flags_set_the_platform_on_top_of_a_plan() -> None:
    config = serve_fake.platform_config(parsed("--plan", "production", *SHARD_OPTIONS, "--starts-reset-after", "9.5"))
    assert (config.shards_suggested, config.shard_limit, config.max_concurrency) == (2, 2, 2)
    assert (config.identify_window, config.session_start_window) == (60.0, 9.5)
    assert config.gateway_rate_limit == serve_fake.PLANS["production"].platform.gateway_rate_limit
    assert serve_fake.platform_config(parsed()).identify_window == 5.0  # the platform's own


@pytest.mark.parametrize(
    "option, value, words",
    [
        ("--shards", "0", "whole number from 1 to 10000"),
        ("--shards", "10001", "whole number from 1 to 10000"),
        ("--shards", "two", "whole number from 1"),
        ("--max-concurrency", "0", "whole number from 1"),
        ("--session-starts", "-1", "whole number from 0"),
        ("--session-starts", "1.5", "whole number from 0"),
        ("--identify-window", "0", "positive number of seconds"),
        ("--identify-window", "nan", "positive number of seconds"),
        ("--starts-reset-after", "inf", "positive number of seconds"),
        ("--starts-reset-after", "-3", "positive number of seconds"),
    ],
)
def test_a_bad_shard_flag_is_refused_naming_it(
    capsys: pytest.CaptureFixture[str], option: str, value: str, words: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        parsed(f"{option}={value}")  # the parser only: a flag let through must not start a server here
    assert exited.value.code == 2
    assert f"argument {option}: wants a {words}" in capsys.readouterr().err


@pytest.mark.parametrize("served", [SHARD_OPTIONS], indirect=True)
def test_shards_in_other_processes_are_counted_and_reached_one_by_one(served: ServedFake) -> None:
    before = time.monotonic()
    gateways = [
        GatewayThread(dataclasses.replace(served.client_config(), shard=(k, 2)), served.ssl_context) for k in (0, 1)
    ]
    for gateway in gateways:
        gateway.start()
    try:
        streams = [gateway.events() for gateway in gateways]
        session_ids = [next_event(events, lambda e: isinstance(e, Ready)).session_id for events in streams]
        after = time.monotonic()
        status, pushed = served.control("POST", "events", {"event_id": "for-shard-1", "shard": 1})
        assert status == 200
        dispatch = next_event(streams[1], lambda e: isinstance(e, Dispatch))
        assert (dispatch.event_id, dispatch.seq) == ("for-shard-1", pushed["seq"])
        shards = served.control("GET", "counters")[1]["shards"]
        reset = served.control("POST", "shards/reset_peaks")
    finally:
        for gateway in gateways:
            gateway.stop()
    assert shards["live"] == shards["peak_live"] == {"0": 1, "1": 1}
    assert shards["sessions"] == {"0": session_ids[0], "1": session_ids[1]}
    assert shards["last_seq"] == {"0": 1, "1": 2} and shards["identifies"] == {"0": 1, "1": 1}
    assert shards["max_identifies_per_window"] == 2
    assert all(before <= t <= after for times in shards["identify_times"].values() for t in times)  # monotonic seconds
    assert reset == (200, {"peak_live": {"0": 1, "1": 1}})
