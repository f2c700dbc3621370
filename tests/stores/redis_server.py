"""A real redis-server on a free loopback port, for tests of everything that shares state through Redis."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

INSTALL_HINT = (
    "install it (Debian/Ubuntu: apt-get install redis-server), or set QQPROTO_REQUIRE_REDIS=1 to fail instead"
)
START_DEADLINE = 10.0


def _unavailable(why: str) -> None:
    if os.environ.get("QQPROTO_REQUIRE_REDIS") == "1":
        pytest.fail(f"QQPROTO_REQUIRE_REDIS=1, but {why}")
    pytest.skip(f"{why}: {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(exe: str, workdir: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], str] | None:
    port = port if port is not None else _free_port()
    command = [
        exe,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + START_DEADLINE
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                client.ping()
                return proc, url
            except redis.ConnectionError:
                time.sleep(0.05)  # polling a child process that is starting; not a race being hidden
    finally:
        client.close()
    proc.kill()
    proc.wait()
    return None


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a redis-server that lives for the whole test session."""
    exe = shutil.which("redis-server")
    if exe is None:
        _unavailable("redis-server is not on PATH")
        return
    for _ in range(3):  # another process may take the free port before the server binds it
        started = _start(exe, tmp_path_factory.mktemp("redis"))
        if started is not None:
            break
    else:
        _unavailable("redis-server did not start")
        return
    proc, url = started
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of that server, with the database emptied for this test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


class RestartableRedis:
    """A redis-server of a test's own, to stop and start again on the same port."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("redis-server")
        assert exe is not None, "redis_url would have skipped or failed first"
        self._exe, self._workdir = exe, workdir
        self._port = _free_port()
        self.url = f"redis://127.0.0.1:{self._port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        started = _start(self._exe, self._workdir, self._port)
        assert started is not None, f"redis-server did not start again on port {self._port}"
        self._proc = started[0]

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None


@contextmanager
def restartable_redis(workdir: Path) -> Iterator[RestartableRedis]:
    server = RestartableRedis(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
