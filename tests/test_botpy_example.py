"""examples/botpy_echo.py, run as its own process against the loopback platform, answers a message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from botpy_bots import PLATFORM, group_message

from qqproto.testing.serve import LoopbackPlatform

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "botpy_echo.py"
TIMEOUT = 20.0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.05)


@pytest.mark.parametrize("transport", [[], ["--thread"]], ids=["asyncio", "thread"])
def test_the_example_answers_a_group_message(transport: list[str], tmp_path: Path) -> None:
    with LoopbackPlatform(config=PLATFORM) as lp:
        env = {**os.environ, "QQBOT_APPID": PLATFORM.app_id, "QQBOT_SECRET": PLATFORM.client_secret}
        command = [sys.executable, str(EXAMPLE), "--api-base", lp.api_base, "--token-url", lp.token_url]
        bot = subprocess.Popen(
            [*command, "--ca-file", lp.ca_pem_path, *transport],
            env=env,
            cwd=tmp_path,  # botpy writes its botpy.log to the working directory
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for(lambda: lp.counters.ready_sent == 1, "READY")
            lp.call(lambda p, now: p.push_event("GROUP_AT_MESSAGE_CREATE", group_message("m1", "hello"), now))
            wait_for(lambda: lp.counters.messages_received == 1, "the reply")
            (reply,) = lp.call(lambda p, now: list(p.messages.received))
        finally:
            bot.send_signal(signal.SIGINT)  # botpy's run() returns on Ctrl-C
            output, _ = bot.communicate(timeout=TIMEOUT)
    assert reply.body["content"] == "echo: hello" and reply.body["msg_id"] == "m1"
    assert f"ready as {lp.platform.bot_user['username']}" in output
