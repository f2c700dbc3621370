"""Each example runs, as its first lines say, against ``qqproto serve-fake``, and sees events."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import lines_of, wait_for

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEADLINE = 30.0

# Each example, and a line that shows it handled an event.
SEEN = {
    "asyncio_bot.py": r"^event C2C_MESSAGE_CREATE seq=\d+: ",
    "trio_bot.py": r"^event (GROUP_AT|C2C)_MESSAGE_CREATE seq=\d+$",
    "thread_bot.py": r"^event \w+ seq=\d+ handled; heartbeat latency \d+ ms$",
    "reply_bot.py": r"^reply \d+ sent as \S+$",
    "health_watchdog.py": r"^bot connected: [1-9]\d* events",
}


def command_of(example: Path) -> list[str]:
    """The command in the example's docstring, with this interpreter for ``python`` and faster events."""
    lines = (line.strip() for line in example.read_text().splitlines())
    line = next(line for line in lines if line.startswith("qqproto serve-fake"))
    words = shlex.split(line)
    assert words[:2] == ["qqproto", "serve-fake"] and words[-2:] == ["python", f"examples/{example.name}"], line
    words[words.index("--events-per-second") + 1] = "10"
    return [sys.executable, "-m", "qqproto_cli", *words[1:-2], sys.executable, str(example)]


@pytest.mark.parametrize("name", sorted(SEEN))
def test_the_example_runs_against_serve_fake_and_sees_events(name: str) -> None:
    child = subprocess.Popen(command_of(EXAMPLES / name), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        lines = lines_of(child.stdout)
        seen = [wait_for(lines, lambda line: re.search(SEEN[name], line) is not None, DEADLINE) for _ in range(2)]
        assert len(seen) == 2
    finally:
        child.send_signal(signal.SIGTERM)
        status = child.wait(timeout=DEADLINE)
    assert status == 0, child.stderr.read() if child.stderr else ""


def test_every_example_is_tested() -> None:
    runnable = {path.name for path in EXAMPLES.glob("*.py") if f"--run python examples/{path.name}" in path.read_text()}
    assert runnable == set(SEEN)
