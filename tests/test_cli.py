"""The qqproto command: simulate, connect (against the loopback fake), serve-fake and demo."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from qqproto.testing import PlatformConfig
from qqproto.testing.serve import LoopbackPlatform
from qqproto_cli.__main__ import main

SIMULATE_KEYS = {
    "events_generated",
    "events_delivered",
    "events_lost",
    "events_duplicated",
    "identifies",
    "resumes",
    "gateway_url_fetches",
    "gateway_cache_invalidations",
    "token_fetches",
    "reconnects_by_reason",
    "uptime_ratio",
    "longest_outage_s",
    "silent_dead_s",
    "timer_late_count",
    "fatal",
    "sim_seconds_per_wall_second",
}


def test_simulate_json_prints_one_object_with_every_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--days", "0.5", "--seed", "2", "--plan", "production", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    assert set(report) >= SIMULATE_KEYS
    assert report["events_lost"] == 0 and report["fatal"] is None
    assert isinstance(report["reconnects_by_reason"], dict)


def test_simulate_prints_a_readable_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--days", "0.2", "--plan", "calm"]) == 0
    out = capsys.readouterr().out
    assert "events lost" in out and "uptime ratio" in out


def lines_of(stream: IO[str]) -> queue.Queue[str]:
    """Read a child's output on a thread, so a test can wait for a line with a deadline."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_for(lines: queue.Queue[str], predicate: Any, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        if predicate(line):
            return line


def test_connect_reads_the_secret_from_the_environment_only(capsys: pytest.CaptureFixture[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "QQBOT_SECRET"}
    result = subprocess.run(
        [sys.executable, "-m", "qqproto_cli", "connect", "--app-id", "1"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "QQBOT_SECRET" in result.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "qqproto_cli", "connect", "--help"], capture_output=True, text=True
    ).stdout
    assert "--secret" not in help_text and "--client-secret" not in help_text


def connect_command(loopback: LoopbackPlatform, app_id: str, transport: str, health_file: Path) -> list[str]:
    """``qqproto connect`` against the loopback fake, as a user would type it."""
    return [
        sys.executable,
        "-m",
        "qqproto_cli",
        "connect",
        "--app-id",
        app_id,
        "--transport",
        transport,
        "--api-base",
        loopback.api_base,
        "--token-url",
        loopback.token_url,
        "--ca-file",
        loopback.ca_pem_path,
        "--health-file",
        str(health_file),
    ]


def test_connect_prints_json_lines_and_keeps_a_health_file(tmp_path: Path) -> None:
    config = PlatformConfig(heartbeat_interval_ms=1000)
    health_file = tmp_path / "health.json"
    with LoopbackPlatform(config=config) as loopback:
        command = connect_command(loopback, config.app_id, "thread", health_file)
        env = {**os.environ, "QQBOT_SECRET": config.client_secret}
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            lines = lines_of(child.stdout)
            ready = json.loads(wait_for(lines, lambda line: '"Ready"' in line))
            assert ready["session_id"]
            loopback.call(
                lambda p, now: p.push_event("C2C_MESSAGE_CREATE", {"id": "m1", "content": "你好"}, now, "ev-1")
            )
            dispatch = json.loads(wait_for(lines, lambda line: '"Dispatch"' in line))
            assert dispatch["event_id"] == "ev-1" and dispatch["data"]["content"] == "你好"
            deadline = time.monotonic() + 10
            while not health_file.exists():
                assert time.monotonic() < deadline
                time.sleep(0.05)
            health = json.loads(health_file.read_text())
            assert health["state"] == "connected" and health["alive"]
            assert config.client_secret not in health_file.read_text()
        finally:
            child.terminate()
            child.wait(timeout=10)


TRANSPORTS = ["thread", "asyncio", "trio"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_wrong_secret_leaves_a_fatal_health_file(transport: str, tmp_path: Path) -> None:
    config = PlatformConfig(heartbeat_interval_ms=1000)  # the core clamps a Hello under 1 s
    health_file = tmp_path / "health.json"
    with LoopbackPlatform(config=config) as loopback:
        command = connect_command(loopback, config.app_id, transport, health_file)
        env = {**os.environ, "QQBOT_SECRET": "not-the-secret"}
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert '"Fatal"' in result.stdout
    health = json.loads(health_file.read_text())
    assert health["state"] == "fatal" and health["alive"] is False
    assert health["fatal_reason"]


@contextlib.contextmanager
def connected_child(
    loopback: LoopbackPlatform, config: PlatformConfig, transport: str, health_file: Path
) -> Iterator[subprocess.Popen[str]]:
    """``qqproto connect`` as a child process, once it has printed Ready; killed if it outlives the block."""
    command = connect_command(loopback, config.app_id, transport, health_file)
    env = {**os.environ, "QQBOT_SECRET": config.client_secret}
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        wait_for(lines_of(child.stdout), lambda line: '"Ready"' in line)
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_fatal_close_after_connecting_is_the_last_word_of_the_health_file(transport: str, tmp_path: Path) -> None:
    config = PlatformConfig(heartbeat_interval_ms=1000)  # the core clamps a Hello under 1 s
    health_file = tmp_path / "health.json"
    with LoopbackPlatform(config=config) as lp, connected_child(lp, config, transport, health_file) as child:
        deadline = time.monotonic() + 10
        while not (health_file.exists() and json.loads(health_file.read_text())["state"] == "connected"):
            assert time.monotonic() < deadline, "the health file never said connected"
            time.sleep(0.05)
        lp.call(lambda p, now: p.close_gateway(4915, now, "banned"))
        assert child.wait(timeout=30) == 1
    health = json.loads(health_file.read_text())
    assert health["state"] == "fatal" and health["alive"] is False
    assert health["fatal_close_code"] == 4915


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_being_stopped_leaves_a_closed_health_file(transport: str, stop: signal.Signals, tmp_path: Path) -> None:
    """SIGTERM and Ctrl-C are how a bot is meant to be stopped: a graceful close, and status 0."""
    config = PlatformConfig(heartbeat_interval_ms=1000)  # the core clamps a Hello under 1 s
    health_file = tmp_path / "health.json"
    with LoopbackPlatform(config=config) as lp, connected_child(lp, config, transport, health_file) as child:
        child.send_signal(stop)
        assert child.wait(timeout=30) == 0
    health = json.loads(health_file.read_text())
    assert health["state"] == "closed" and health["alive"] is False


def test_a_closed_stdout_ends_connect_quietly(tmp_path: Path) -> None:
    config = PlatformConfig(heartbeat_interval_ms=1000)  # the core clamps a Hello under 1 s
    health_file = tmp_path / "health.json"
    with LoopbackPlatform(config=config) as loopback:
        command = connect_command(loopback, config.app_id, "thread", health_file)
        env = {**os.environ, "QQBOT_SECRET": config.client_secret}
        # The shell's own pipe: head takes the first line and exits, closing the pipe under connect.
        pipeline = " ".join(f"'{part}'" for part in command) + " | head -n 1"
        result = subprocess.run(["sh", "-c", pipeline], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert '"event"' in result.stdout
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr
    assert json.loads(health_file.read_text())["state"] == "closed"


def test_serve_fake_prints_what_a_client_needs() -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "qqproto_cli", "serve-fake", "--heartbeat-ms", "1000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        lines = lines_of(child.stdout)
        seen = {wait_for(lines, lambda line: True).split()[0] for _ in range(6)}
        assert {"api_base", "token_url", "gateway_url", "ca_pem_path", "app_id", "client_secret"} <= seen
    finally:
        child.terminate()
        child.wait(timeout=10)


def test_demo_survives_its_faults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--seconds", "10", "--transport", "thread"]) == 0
    out = capsys.readouterr().out
    assert "verdict" in out and "survived" in out
    assert "events lost                     0" in out


def test_simulate_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "run.png"
    assert main(["simulate", "--days", "0.3", "--plan", "production", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
