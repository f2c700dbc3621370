"""The client side of one WebSocket, spoken through wsproto, reduced to what the gateway needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from ._http import Endpoint

__all__ = ["WebSocketClient", "WsOpened", "WsText", "WsClosed", "WsFailed", "WsEvent"]

ABNORMAL_CLOSURE = 1006


@dataclass(frozen=True)
class WsOpened:
    """The upgrade succeeded."""


@dataclass(frozen=True)
class WsText:
    """One complete text message."""

    text: str


@dataclass(frozen=True)
class WsClosed:
    """The socket is finished: the closing handshake completed, or the peer went away.

    ``code`` is the peer's close code, or None when no close frame arrived.
    """

    code: Optional[int]
    reason: str


@dataclass(frozen=True)
class WsFailed:
    """The peer broke the WebSocket protocol or a limit; ``reason`` says how."""

    reason: str


WsEvent = Union[WsOpened, WsText, WsClosed, WsFailed]


class WebSocketClient:
    """Turns bytes from the socket into gateway messages and closes, and messages into bytes."""

    def __init__(self, endpoint: Endpoint, *, max_message_size: int) -> None:
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._handshake = self._ws.send(Request(host=endpoint.host_header, target=endpoint.target))
        self._max_message_size = max_message_size
        self._parts: list[str] = []
        self._size = 0
        self._finished = False

    def handshake_bytes(self) -> bytes:
        """The upgrade request, to write once the socket is open."""
        return self._handshake

    @property
    def is_open(self) -> bool:
        """True while messages may be sent."""
        return not self._finished and self._ws.state is ConnectionState.OPEN

    def send_text(self, text: str) -> bytes:
        """The bytes of one text message."""
        return self._ws.send(TextMessage(data=text))

    def close(self, code: int, reason: str = "") -> bytes:
        """Start the closing handshake; the bytes of the close frame (empty when already closing)."""
        if self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            return self._ws.send(CloseConnection(code=code, reason=reason))
        return b""

    def receive_data(self, data: bytes) -> tuple[list[WsEvent], bytes]:
        """Feed bytes read from the socket (``b""`` at EOF); return what happened and bytes to write back."""
        if self._finished:
            return [], b""
        events: list[WsEvent] = []
        out = b""
        try:
            self._ws.receive_data(data if data else None)
            for event in self._ws.events():
                if isinstance(event, TextMessage):
                    self._size += len(event.data)
                    if self._size > self._max_message_size:
                        return self._fail(events, out, 1009, f"message larger than {self._max_message_size} bytes")
                    self._parts.append(event.data)
                    if event.message_finished:
                        events.append(WsText("".join(self._parts)))
                        self._parts.clear()
                        self._size = 0
                elif isinstance(event, AcceptConnection):
                    events.append(WsOpened())
                elif isinstance(event, Ping):
                    out += self._ws.send(event.response())
                elif isinstance(event, CloseConnection):
                    return self._closed(events, out, event)
                elif isinstance(event, RejectConnection):
                    return self._fail(events, out, None, f"the gateway refused the upgrade with HTTP {event.status_code}")
                elif isinstance(event, BytesMessage):
                    return self._fail(events, out, 1003, "the gateway sent a binary message")
        except Exception as exc:  # wsproto and h11 raise several types on malformed input
            return self._fail(events, out, 1002, f"malformed WebSocket data ({exc.__class__.__name__}: {exc})")
        if data == b"":
            events.append(WsClosed(None, "the connection closed"))
            self._finished = True
        return events, out

    def _closed(self, events: list[WsEvent], out: bytes, event: CloseConnection) -> tuple[list[WsEvent], bytes]:
        state = self._ws.state
        if state is ConnectionState.OPEN:
            # wsproto reports a frame it could not parse as a close it has not sent yet.
            return self._fail(events, out, event.code, f"bad WebSocket frame: {event.reason}")
        if state is ConnectionState.REMOTE_CLOSING:
            out += self._ws.send(event.response())
        code: Optional[int] = None if event.code == ABNORMAL_CLOSURE else int(event.code)
        events.append(WsClosed(code, event.reason or ""))
        self._finished = True
        return events, out

    def _fail(
        self, events: list[WsEvent], out: bytes, code: Optional[int], reason: str
    ) -> tuple[list[WsEvent], bytes]:
        if code is not None:
            try:
                out += self.close(code, reason[:100])
            except Exception:
                pass
        events.append(WsFailed(reason))
        self._finished = True
        return events, out
