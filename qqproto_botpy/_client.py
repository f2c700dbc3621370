"""``qqproto_botpy.Client``: a ``botpy.Client`` whose gateway is qqproto's.

botpy's login, parsers, message objects, ``client.api`` and ``client.robot`` stay.  Its
``BotWebSocket`` pool is never started: each shard is a qqproto connection, and every Ready,
Resumed and Dispatch reaches ``client._connection.parser[...]`` as the frame botpy would have read.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import botpy
from botpy.connection import ConnectionSession
from botpy.robot import Robot

from qqproto import (
    PRODUCTION_API_BASE,
    SANDBOX_API_BASE,
    TOKEN_URL,
    Action,
    Dispatch,
    GatewayConfig,
    Health,
    MessageFailed,
    MessageSent,
    OutgoingMessage,
    Ready,
    Resumed,
)
from transports.asyncio import GatewayFatalError

from ._api import BridgeAPI, botpy_error
from ._frames import botpy_frame
from ._http import BridgeHttp, SharedToken
from ._outcomes import Outcomes
from ._shards import TRANSPORTS, Shard

__all__ = ["Client"]

_log = logging.getLogger("qqproto_botpy")

#: How many received message ids are remembered, to date replies to them (``received_at``).
REMEMBERED_MESSAGES = 10_000


class Client(botpy.Client):
    """botpy's ``Client`` on qqproto's gateway; takes botpy's arguments plus the keyword-only ones below.

    ``transport``: ``"asyncio"`` runs the connection on the bot's loop; ``"thread"`` on its own
    thread, so heartbeats go on while a handler blocks the loop.  ``ssl_context`` replaces the
    verifying default for the gateway and botpy's HTTP alike.  ``api_base`` and ``token_url``
    point both at another platform (a staging one, or the fake).  ``gateway_settings`` sets
    further :class:`~qqproto.GatewayConfig` fields (timeouts, backoff) for every shard.
    """

    http: BridgeHttp
    api: BridgeAPI

    def __init__(
        self,
        *args: Any,
        transport: str = "asyncio",
        ssl_context: ssl.SSLContext | None = None,
        api_base: str | None = None,
        token_url: str | None = None,
        gateway_settings: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {sorted(TRANSPORTS)}, not {transport!r}")
        _ensure_event_loop()  # botpy's __init__ asks for the current loop, and run() runs on it
        super().__init__(*args, **kwargs)
        self._shard_type = TRANSPORTS[transport]
        self._ssl_context = ssl_context
        self._api_base = api_base or (SANDBOX_API_BASE if self.http.is_sandbox else PRODUCTION_API_BASE)
        self._token_url = token_url or TOKEN_URL
        self._gateway_settings = dict(gateway_settings or {})
        verified = ssl_context or ssl.create_default_context()
        self.http = BridgeHttp(self.http.timeout, self.http.is_sandbox, self._api_base, verified)
        self.api = BridgeAPI(self.http, self._send)
        self._credentials: tuple[str, str] | None = None
        self._shards: list[Shard] = []
        self._pumps: list[asyncio.Task[None]] = []
        self._outcomes = Outcomes()
        self._received: OrderedDict[str, float] = OrderedDict()
        self._fatal: Exception | None = None  # what stopped a shard for good

    # -- botpy's entry points -------------------------------------------------------------

    async def start(self, appid: str, secret: str, ret_coro: bool = False) -> Any:
        """Log in the botpy way, connect every shard through qqproto, and serve until closed.

        Raises :class:`GatewayFatalError` when the gateway stops for good (bad credentials,
        4914/4915, retries run out).
        """
        self.ret_coro = ret_coro
        if self.loop is not asyncio.get_running_loop():
            await self._async_setup_hook()
        self._credentials = (appid, secret)
        self._news = asyncio.Event()  # a shard delivered something, or stopped
        self._logged_in = asyncio.Event()  # events wait until the shards are settled and botpy's state is built
        self._stopped = asyncio.Event()
        try:
            await self._open_shards(1)
            await self._bot_login(SharedToken(appid, self._current_token, self._token_ready))
            await self._fit_shards()
        except BaseException:
            await self._close_shards()
            raise
        self._logged_in.set()  # from now on, events go to botpy's parsers
        serving = self._serve()
        return serving if ret_coro else await serving

    async def _bot_login(self, token: SharedToken) -> None:
        """botpy's login (``/users/@me``) with qqproto's token; builds the ``ConnectionState`` its parsers live on."""
        user = await self.http.login(token)
        self._connection = ConnectionSession(
            max_async=1, connect=self.bot_connect, dispatch=self.ws_dispatch, loop=self.loop, api=self.api
        )
        self._connection.state.robot = Robot(user)

    async def close(self) -> None:
        """Close every shard gracefully, then botpy's HTTP session."""
        if self.is_closed():
            return
        await self._close_shards()
        if self._credentials is not None:
            self._stopped.set()
        await super().close()

    def gateway_health(self) -> list[Health]:
        """qqproto's health of each shard's connection, for watchdogs."""
        return [shard.health() for shard in self._shards]

    # -- shards ---------------------------------------------------------------------------

    async def _open_shards(self, count: int) -> None:
        assert self._credentials is not None
        appid, secret = self._credentials
        for shard_id in range(count):
            config = GatewayConfig(
                appid,
                secret,
                intents=self.intents or 1,  # botpy identifies with 1 when given none
                shard=(shard_id, count),
                api_base=self._api_base,
                token_url=self._token_url,
                **self._gateway_settings,
            )
            shard = self._shard_type(config, self._ssl_context)
            await shard.start()
            self._shards.append(shard)
            self._pumps.append(self.loop.create_task(self._pump(shard_id, shard), name=f"qqproto shard {shard_id}"))

    async def _fit_shards(self) -> None:
        """Ask ``/gateway/bot`` as botpy does; with more than one shard, run one connection per shard."""
        try:
            self._ws_ap = await self.api.get_ws_url()
        except Exception as exc:
            _log.warning("GET /gateway/bot failed (%s); running one shard", exc)
            return
        shards = self._ws_ap.get("shards") if isinstance(self._ws_ap, dict) else None
        if isinstance(shards, int) and not isinstance(shards, bool) and shards > 1:
            _log.info("the platform asks for %d shards; reconnecting with one connection per shard", shards)
            await self._close_shards()
            await self._open_shards(shards)

    async def _close_shards(self) -> None:
        shards, self._shards = self._shards, []
        pumps, self._pumps = self._pumps, []
        for shard in shards:
            await shard.stop()
        for pump in pumps:
            if not self._logged_in.is_set():
                pump.cancel()  # it may be waiting for a login that will never come
        await asyncio.gather(*pumps, return_exceptions=True)
        self._outcomes.fail_all(self._fatal or GatewayFatalError("the client closed before the message was sent", None))

    async def _serve(self) -> None:
        await self._stopped.wait()
        await self.close()
        if self._fatal is not None:
            raise self._fatal

    async def _pump(self, index: int, shard: Shard) -> None:
        """Hand one shard's events to botpy, in order; a Fatal stops the client."""
        try:
            async for event in shard.events():
                self._news.set()
                if not self._logged_in.is_set():
                    await self._logged_in.wait()
                self._handle(index, shard, event)
        except Exception as exc:  # GatewayFatalError, or the transport itself failed
            _log.error("shard %d stopped for good: %s", index, exc)
            if self._fatal is None:
                self._fatal = exc
            self._news.set()
            self._stopped.set()

    def _handle(self, index: int, shard: Shard, event: Action) -> None:
        if isinstance(event, (Dispatch, Ready, Resumed)):
            if isinstance(event, Dispatch):
                self._remember(event, shard.now())
            key, frame = botpy_frame(event)
            parser = self._connection.parser.get(key)
            if parser is None:
                _log.info("botpy has no parser for %s; skipped", frame["t"])
                return
            try:
                parser(frame)
            except Exception:
                _log.exception("botpy's parser for %s failed", frame["t"])
        elif isinstance(event, (MessageSent, MessageFailed)):
            self._outcomes.arrived((index, event.send_id), event)
        else:
            _log.debug("shard %d: %s", index, event)

    def _remember(self, event: Dispatch, now: float) -> None:
        """When a message arrived: replies to it are dated from then."""
        msg_id = event.data.get("id") if isinstance(event.data, dict) else None
        if isinstance(msg_id, str):
            self._received[msg_id] = now
            if len(self._received) > REMEMBERED_MESSAGES:
                self._received.popitem(last=False)

    # -- what botpy's HTTP and API call -----------------------------------------------------

    def _current_token(self) -> str | None:
        return self._shards[0].access_token if self._shards else None

    async def _token_ready(self) -> None:
        """Wait until the first shard's connection holds a token; raises if the gateway stopped first."""
        while self._current_token() is None:
            if self._fatal is not None:
                raise self._fatal
            if not self._shards:
                raise GatewayFatalError("the client is not connected", None)
            self._news.clear()
            await self._news.wait()

    async def _send(self, message: OutgoingMessage) -> str | None:
        """Send through the first shard's connection and wait for the outcome; botpy's error on failure."""
        if not self._shards:
            raise RuntimeError("the client is not running: send after start() and before close()")
        shard = self._shards[0]
        if message.msg_id is not None:
            message.received_at = self._received.get(message.msg_id)
        outcome = await self._outcomes.wait((0, shard.send_message(message)))
        if isinstance(outcome, MessageFailed):
            raise botpy_error(outcome)
        return outcome.message_id


def _ensure_event_loop() -> None:
    """Give this thread a current event loop if it has none (botpy built bots at import time, when it had)."""
    try:
        asyncio.get_running_loop()
        return
    except RuntimeError:
        pass
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
