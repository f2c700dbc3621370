"""Run an unmodified botpy bot against a :class:`LoopbackPlatform`: its fixed hosts are sent to loopback.

botpy posts to ``https://bots.qq.com`` and ``https://api.sgroup.qq.com`` with no way to change
either, so while :func:`botpy_on_loopback` is active every aiohttp request to those hosts goes
to the loopback platform instead, over TLS verified against its test CA, as a hosts-file entry
and a trusted CA would arrange.  Nothing of botpy itself is changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import aiohttp
import yarl

from qqproto.testing.serve import LoopbackPlatform

__all__ = ["PLATFORM_HOSTS", "botpy_on_loopback"]

PLATFORM_HOSTS = frozenset({"bots.qq.com", "api.sgroup.qq.com", "sandbox.api.sgroup.qq.com"})


@contextlib.contextmanager
def botpy_on_loopback(lp: LoopbackPlatform) -> Iterator[None]:
    """Send aiohttp's requests for the platform's hosts to ``lp``; TLS trusts only ``lp``'s CA."""
    ssl_context = lp.client_ssl_context()
    original = aiohttp.ClientSession._request

    async def request(self: aiohttp.ClientSession, method: str, url: Any, **kwargs: Any) -> Any:
        target = yarl.URL(str(url))
        if target.host in PLATFORM_HOSTS:
            target = target.with_host(lp.host).with_port(lp.port)
        if target.host == lp.host:
            kwargs["ssl"] = ssl_context
        return await original(self, method, target, **kwargs)

    aiohttp.ClientSession._request = request
    try:
        yield
    finally:
        aiohttp.ClientSession._request = original
