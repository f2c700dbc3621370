"""Fixtures for the transport suite: each test runs once per transport against a loopback platform."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from harness import HEARTBEAT_INTERVAL_MS, TRANSPORTS

from qqproto.testing import PlatformConfig
from qqproto.testing.serve import LoopbackPlatform


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "platform(**settings): PlatformConfig settings for the lp fixture")


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Which transport the test drives: asyncio, trio or thread."""
    return str(request.param)


@pytest.fixture
def anyio_backend(transport: str) -> str:
    """The thread transport is consumed from asyncio; the others run on their own runtime."""
    return "trio" if transport == "trio" else "asyncio"


@pytest.fixture
def lp(request: pytest.FixtureRequest) -> Iterator[LoopbackPlatform]:
    """A loopback platform; ``@pytest.mark.platform(...)`` adjusts its config."""
    settings: dict[str, Any] = {"heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS}
    marker = request.node.get_closest_marker("platform")
    if marker is not None:
        settings.update(marker.kwargs)
    with LoopbackPlatform(config=PlatformConfig(**settings), seed=0) as server:
        yield server
