"""A watchdog for a bot run as ``qqproto connect --health-file``: it restarts a bot that hangs or stays down.

    qqproto serve-fake --heartbeat-ms 2000 --events-per-second 2 --run python examples/health_watchdog.py

The health file is rewritten soon after each change of state and at least every second, and its
last word is the final state, so three readings are enough:

- ``alive`` false: the bot stopped. After a ``fatal`` a restart would fail the same way (the
  reason says what to fix), so the watchdog reports it and stops; after ``closed`` it restarts.
- ``written_at`` older than ``STALE`` seconds: the process hangs; restart it.
- a ``state`` other than ``connected`` for longer than ``DOWN_FOR``: the bot keeps reconnecting
  without success (the platform is away, or the network); restart it, and look at
  ``last_disconnect_reason``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

CHECK_EVERY = 1.0
STALE = 10.0
DOWN_FOR = 120.0


def start_bot(health_file: str) -> subprocess.Popen[bytes]:
    """``qqproto connect`` with the settings in the environment; its events go to /dev/null here."""
    command = [sys.executable, "-m", "qqproto_cli", "connect", "--app-id", os.environ["QQBOT_APP_ID"]]
    command += ["--health-file", health_file]
    for option, variable in (
        ("--api-base", "QQBOT_API_BASE"),
        ("--token-url", "QQBOT_TOKEN_URL"),
        ("--ca-file", "QQBOT_CA_FILE"),
    ):
        if variable in os.environ:
            command += [option, os.environ[variable]]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL)  # QQBOT_SECRET reaches it through the environment


def read_health(path: str) -> dict[str, Any] | None:
    """The last snapshot, or None before the first one (it is replaced atomically, never half written)."""
    try:
        with open(path) as handle:
            health: dict[str, Any] = json.load(handle)
            return health
    except FileNotFoundError:
        return None


def verdict(health: dict[str, Any] | None, started: float, down_since: float | None) -> str | None:
    """Why the bot needs a restart, or None while it is fine (or still starting)."""
    now = time.time()
    if health is None:
        return "no health file yet" if now - started > STALE else None
    if not health["alive"]:
        return f"it stopped ({health['state']})"
    if now - health["written_at"] > STALE:
        return f"its health file is {now - health['written_at']:.0f}s old: the process hangs"
    if down_since is not None and now - down_since > DOWN_FOR:
        return f"it has been {health['state']} for {now - down_since:.0f}s ({health['last_disconnect_reason']})"
    return None


def main() -> int:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # so that the bot is stopped with us
    health_file = os.path.join(tempfile.mkdtemp(prefix="qqbot-"), "health.json")
    bot, started, down_since = start_bot(health_file), time.time(), None
    try:
        while True:
            time.sleep(CHECK_EVERY)
            health = read_health(health_file)
            if health is not None and health["state"] == "connected":
                down_since = None
            elif health is not None and down_since is None:
                down_since = time.time()
            if health is not None:
                print(
                    f"bot {health['state']}: {health['dispatches_delivered']} events, "
                    f"reconnects {health['reconnects_by_cause']}",
                    flush=True,
                )
            if health is not None and health["state"] == "fatal":
                print(f"the bot stopped for good: {health['fatal_reason']}", file=sys.stderr)
                return 1
            reason = verdict(health, started, down_since)
            if reason is not None:
                print(f"restarting the bot: {reason}", flush=True)
                bot.terminate()
                bot.wait()
                if os.path.exists(health_file):
                    os.unlink(health_file)
                bot, started, down_since = start_bot(health_file), time.time(), None
    except KeyboardInterrupt:
        return 0
    finally:
        bot.terminate()
        bot.wait()


if __name__ == "__main__":
    sys.exit(main())
