"""botpy's HTTP client pointed at qqproto's token and endpoints: one token, the chosen base URL and TLS."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from botpy.http import BotHttp, Route
from botpy.robot import Token

__all__ = ["BridgeHttp", "SharedToken"]


class SharedToken(Token):
    """botpy's ``Token``, backed by the token qqproto's core fetches and refreshes; it never fetches one itself."""

    def __init__(self, app_id: str, current: Callable[[], str | None], ready: Callable[[], Awaitable[None]]) -> None:
        # Token.__init__ would keep the secret and an empty token of its own; neither is needed here.
        self.app_id = app_id
        self.Type = self.TYPE_BOT
        self.expires_in = 0
        self._current = current
        self._ready = ready

    def __repr__(self) -> str:
        return f"SharedToken(app_id={self.app_id!r})"

    @property
    def access_token(self) -> str | None:
        """The core's token right now."""
        return self._current()

    @access_token.setter
    def access_token(self, value: str | None) -> None:
        """botpy clears it after a 4004; the core already handles that close, so nothing is kept here."""

    async def check_token(self) -> None:
        """Wait until the core holds a token (it fetches one as soon as it starts)."""
        await self._ready()

    async def update_access_token(self) -> None:
        await self._ready()


class _BasedRoute(Route):
    """A botpy ``Route`` whose URL starts at ``api_base`` instead of botpy's fixed domain."""

    def __init__(self, route: Route, api_base: str) -> None:
        super().__init__(route.method, route.path, **route.parameters)
        self._api_base = api_base.rstrip("/")

    @property
    def url(self) -> str:
        path: str = self.path.format_map(self.parameters) if self.parameters else self.path
        return self._api_base + path


class BridgeHttp(BotHttp):
    """``BotHttp`` with a base URL, a verifying TLS context, and the shared token in every request."""

    _session: aiohttp.ClientSession | None

    def __init__(self, timeout: int, is_sandbox: bool, api_base: str, ssl_context: ssl.SSLContext) -> None:
        super().__init__(timeout=timeout, is_sandbox=is_sandbox)
        self.api_base = api_base
        self._ssl_context = ssl_context

    async def check_session(self) -> None:
        """What botpy does before each request, with our TLS context in place of its unverified one."""
        await self._token.check_token()
        self._headers = {"Authorization": self._token.get_string(), "X-Union-Appid": self._token.app_id}
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=500, ssl=self._ssl_context, force_close=True)
            self._session = aiohttp.ClientSession(connector=connector)

    async def request(self, route: Route, retry_time: int = 0, **kwargs: Any) -> Any:
        if not isinstance(route, _BasedRoute):
            route = _BasedRoute(route, self.api_base)
        return await super().request(route, retry_time, **kwargs)
