"""The fake platform on loopback TLS, in a process of its own so that no client competes with it for the GIL."""

from __future__ import annotations

import os
import pickle
import random
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any

from qqproto import GatewayConfig
from qqproto.testing import DispatchGenerator, FakeQQPlatform, PlatformConfig
from qqproto.testing.serve import LoopbackPlatform

__all__ = ["Endpoints", "Server"]

#: Distinct event bodies the server cycles through when it streams.
EVENT_BODIES = 2000


@dataclass(frozen=True)
class Endpoints:
    """Where the server listens, the CA that signed it, and the bot it accepts."""

    api_base: str
    token_url: str
    gateway_url: str
    ca_path: str
    app_id: str
    client_secret: str


class Server:
    """A :class:`LoopbackPlatform` in a child process, driven by pickled commands on its stdin and stdout."""

    def __init__(self, config: PlatformConfig) -> None:
        self._config = config
        self.endpoints: Endpoints

    def __enter__(self) -> Server:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench._server"], cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._commands, self._answers = self._process.stdin, self._process.stdout
        _send(self._commands, self._config)
        self.endpoints = Endpoints(*self.wait())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _send(self._commands, ("stop",))
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def client_config(self, **overrides: Any) -> GatewayConfig:
        """A client of this server, with ``overrides`` applied."""
        e = self.endpoints
        return GatewayConfig(
            app_id=e.app_id, client_secret=e.client_secret, api_base=e.api_base, token_url=e.token_url, **overrides
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts the server's throwaway CA."""
        return ssl.create_default_context(cafile=self.endpoints.ca_path)

    def stream(self, count: int) -> None:
        """Start pushing ``count`` dispatches to the connected session; :meth:`wait` for the answer."""
        _send(self._commands, ("stream", count))

    def close_gateway(self, code: int) -> None:
        """Start closing every gateway socket with ``code``; :meth:`wait` returns the server's clock then."""
        _send(self._commands, ("close", code))

    def heartbeat_times(self) -> list[float]:
        """``time.monotonic()`` of every heartbeat the server received so far."""
        _send(self._commands, ("heartbeats",))
        result: list[float] = self.wait()
        return result

    def wait(self) -> Any:
        """The answer to the last command."""
        return pickle.load(self._answers)


def _send(pipe: IO[bytes], message: object) -> None:
    pickle.dump(message, pipe)
    pipe.flush()


def _serve(commands: IO[bytes], answers: IO[bytes]) -> None:
    config: PlatformConfig = pickle.load(commands)
    events = DispatchGenerator(random.Random(0))
    bodies = [events.next(float(n)) for n in range(EVENT_BODIES)]
    with LoopbackPlatform(config=config) as lp:
        # Accepted sockets inherit this: without it Nagle holds Hello back for a delayed ACK (~40 ms).
        lp._listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _send(answers, (lp.api_base, lp.token_url, lp.gateway_url, lp.ca_pem_path, config.app_id, config.client_secret))
        while True:
            command, *args = pickle.load(commands)
            if command == "stop":
                return
            _send(answers, lp.call(lambda platform, now: _COMMANDS[command](platform, now, bodies, *args)))


def _stream(platform: FakeQQPlatform, now: float, bodies: list[Any], count: int) -> int | None:
    last = None
    for n in range(count):
        event_type, data, event_id = bodies[n % len(bodies)]
        last = platform.push_event(event_type, data, now, f"{event_id}-{n}")
    return last


def _close(platform: FakeQQPlatform, now: float, bodies: list[Any], code: int) -> float:
    platform.close_gateway(code, now)
    return now


def _heartbeats(platform: FakeQQPlatform, now: float, bodies: list[Any]) -> list[float]:
    return list(platform.heartbeat_times)


_COMMANDS: dict[str, Callable[..., Any]] = {"stream": _stream, "close": _close, "heartbeats": _heartbeats}


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
