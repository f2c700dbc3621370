"""The command line in webhook mode: the demo end to end, and connect serving real callbacks."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trustme
from test_cli import lines_of, wait_for

from qqproto.testing import PlatformConfig
from qqproto.testing.serve import LoopbackPlatform
from qqproto_cli.__main__ import main


def test_the_webhook_demo_survives_its_faults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--webhook", "--seconds", "10"]) == 0
    out = capsys.readouterr().out
    assert "survived" in out and "events lost             0" in out
    assert "bad signatures refused  3" in out


def test_connect_webhook_serves_callbacks_as_json_lines(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    config = PlatformConfig()
    health_file = tmp_path / "health.json"
    with LoopbackPlatform(config=config) as loopback:
        command = [
            sys.executable, "-m", "qqproto_cli", "connect", "--app-id", config.app_id, "--webhook",
            "--listen", "127.0.0.1:0", "--certfile", str(tmp_path / "cert.pem"), "--keyfile", str(tmp_path / "key.pem"),
            "--health-file", str(health_file),
            "--api-base", loopback.api_base, "--token-url", loopback.token_url, "--ca-file", loopback.ca_pem_path,
        ]  # fmt: skip
        env = {**os.environ, "QQBOT_SECRET": config.client_secret}
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            lines = lines_of(child.stdout)
            url = json.loads(wait_for(lines, lambda line: '"Listening"' in line))["url"]
            loopback.push_to(url, client_context)
            loopback.call(
                lambda p, now: p.push_event("C2C_MESSAGE_CREATE", {"id": "m1", "content": "你好"}, now, "ev-1")
            )
            dispatch = json.loads(wait_for(lines, lambda line: '"Dispatch"' in line))
            assert dispatch["event_id"] == "ev-1" and dispatch["data"]["content"] == "你好"
            deadline = time.monotonic() + 10
            while not (health_file.exists() and json.loads(health_file.read_text())["accepted_requests"] == 1):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            health = json.loads(health_file.read_text())
            assert (health["mode"], health["state"], health["alive"]) == ("webhook", "serving", True)
            assert config.client_secret not in health_file.read_text()
        finally:
            child.terminate()
            child.wait(timeout=10)
        assert loopback.counters.token_fetches == 1  # the API connection, ready to send


def test_connect_webhook_on_a_taken_port_is_fatal(tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        command = [
            sys.executable,
            "-m",
            "qqproto_cli",
            "connect",
            "--app-id",
            "1",
            "--webhook",
            "--listen",
            f"127.0.0.1:{port}",
        ]
        result = subprocess.run(
            command, env={**os.environ, "QQBOT_SECRET": "s"}, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert "cannot listen" in json.loads(result.stdout.splitlines()[-1])["reason"]
