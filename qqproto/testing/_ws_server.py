"""The server side of one WebSocket (wsproto): the RFC 6455 handshake check, then text frames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import generate_accept_token

from .._frames import OPCODE_CLOSE, OPCODE_TEXT, SIMPLE_TEXT, encode_frame, frame_extent, unmask
from ._http_server import HTTPRequest

__all__ = [
    "Binary",
    "PeerClosed",
    "ProtocolError",
    "Reply",
    "Text",
    "WSInput",
    "WSServer",
    "handshake_headers",
    "holds_close_frame",
]

MAX_MESSAGE = 1024 * 1024


@dataclass(frozen=True)
class Text:
    """A complete text message."""

    text: str


@dataclass(frozen=True)
class Binary:
    """A binary message, which the gateway never accepts."""


@dataclass(frozen=True)
class Reply:
    """Control bytes (a pong) to write back at once."""

    data: bytes


@dataclass(frozen=True)
class PeerClosed:
    """The client closed, by close frame (``code``) or EOF (``code`` None); write ``reply`` and close."""

    reply: bytes
    code: int | None = None


@dataclass(frozen=True)
class ProtocolError:
    """The client broke RFC 6455; write ``reply`` (a close frame with ``code``) and close."""

    code: int
    reply: bytes


WSInput = Union[Text, Binary, Reply, PeerClosed, ProtocolError]


def handshake_headers(request: HTTPRequest) -> list[tuple[bytes, bytes]] | None:
    """The 101 headers for a valid opening handshake, or None if it is not one."""
    headers = request.headers
    connection = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    key = headers.get("sec-websocket-key", "")
    if (
        request.method != "GET"
        or not request.upgrade
        or headers.get("upgrade", "").lower() != "websocket"
        or "upgrade" not in connection
        or headers.get("sec-websocket-version") != "13"
        or not key
    ):
        return None
    return [
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-accept", generate_accept_token(key.encode("latin-1"))),
    ]


def holds_close_frame(data: bytes | bytearray) -> bool:
    """True once ``data``, the bytes a client sent after our Close frame, holds its Close frame."""
    pos = 0
    while (extent := frame_extent(data, pos)) is not None:
        first, header, length, _ = extent
        if first & 0x0F == OPCODE_CLOSE:
            return True
        pos += header + length
    return False


class WSServer:
    """Frames in and out of one accepted WebSocket.

    Whole masked text frames are decoded here; every other frame goes whole to wsproto.
    """

    def __init__(self) -> None:
        self._ws = Connection(ConnectionType.SERVER)
        self._buffer = bytearray()
        self._owed_to_wsproto = 0
        self._fragmented = False
        self._parts: list[str] = []
        self._size = 0

    @property
    def open(self) -> bool:
        """True while messages can still be sent."""
        return self._ws.state is ConnectionState.OPEN

    def receive_data(self, data: bytes) -> list[WSInput]:
        """Feed bytes from the client (``b""``: EOF); a closing input is always the last."""
        if self._ws.state is ConnectionState.CLOSED:
            return []
        if not data:
            return self._to_wsproto(None)
        inputs: list[WSInput] = []
        buffer = self._buffer
        buffer += data
        pos = 0
        while pos < len(buffer):
            if self._owed_to_wsproto:
                chunk = bytes(buffer[pos : pos + self._owed_to_wsproto])
                pos += len(chunk)
                self._owed_to_wsproto -= len(chunk)
                inputs += self._to_wsproto(chunk)
            else:
                extent = frame_extent(buffer, pos)
                if extent is None:
                    break
                first, header, length, masked = extent
                end = pos + header + length
                if first == SIMPLE_TEXT and masked and not self._fragmented and length <= MAX_MESSAGE:
                    if end > len(buffer):
                        break
                    payload = unmask(bytes(buffer[pos + header : end]), bytes(buffer[pos + header - 4 : pos + header]))
                    pos = end
                    try:
                        inputs.append(Text(payload.decode("utf-8")))
                    except UnicodeDecodeError:
                        inputs.append(ProtocolError(1007, self.close(1007, "invalid UTF-8")))
                else:
                    opcode = first & 0x0F
                    if opcode in (1, 2):
                        self._fragmented = not first & 0x80
                    elif opcode == 0 and first & 0x80:
                        self._fragmented = False
                    self._owed_to_wsproto = header + length
            if inputs and isinstance(inputs[-1], (PeerClosed, ProtocolError)):
                break
        del buffer[:pos]
        return inputs

    def _to_wsproto(self, data: bytes | None) -> list[WSInput]:
        self._ws.receive_data(data)
        inputs: list[WSInput] = []
        for event in self._ws.events():
            if isinstance(event, TextMessage):
                self._parts.append(event.data)
                self._size += len(event.data)
                if self._size > MAX_MESSAGE:
                    return [*inputs, ProtocolError(1009, self.close(1009, "message too big"))]
                if event.message_finished:
                    inputs.append(Text("".join(self._parts)))
                    self._parts.clear()
                    self._size = 0
            elif isinstance(event, BytesMessage):
                inputs.append(Binary())
            elif isinstance(event, Ping):
                inputs.append(Reply(self._ws.send(event.response())))
            elif isinstance(event, CloseConnection):
                return [*inputs, self._closed(event)]
        return inputs

    def _closed(self, event: CloseConnection) -> WSInput:
        if self._ws.state is ConnectionState.REMOTE_CLOSING:
            return PeerClosed(self._ws.send(event.response()), event.code)
        if self._ws.state is ConnectionState.OPEN:
            return ProtocolError(event.code, self.close(event.code, event.reason or ""))
        return PeerClosed(b"", None if event.code == 1006 else event.code)

    def send_text(self, text: str) -> bytes:
        """One text message, or b"" once the socket is closing."""
        return encode_frame(OPCODE_TEXT, text.encode()) if self.open else b""

    def close(self, code: int, reason: str) -> bytes:
        """A close frame, or b"" once the socket is closing."""
        return self._ws.send(CloseConnection(code=code, reason=reason)) if self.open else b""
