"""The client side of one WebSocket, spoken through wsproto, reduced to what the gateway needs."""

from __future__ import annotations

import codecs
import random
from dataclasses import dataclass
from typing import Union

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

from ._frames import OPCODE_CLOSE, OPCODE_PONG, OPCODE_TEXT, SIMPLE_TEXT, encode_frame, frame_extent
from ._http import Endpoint

__all__ = ["WebSocketClient", "WsClosed", "WsFailed", "WsOpened", "WsReceived"]

ABNORMAL_CLOSURE = 1006
# Close codes that must not be sent back in a close frame (RFC 6455 §7.4.1).
NO_ECHO = frozenset({1005, 1006, 1015})


@dataclass(frozen=True)
class WsOpened:
    """The upgrade succeeded."""


@dataclass(frozen=True)
class WsClosed:
    """The socket is finished: the closing handshake completed, or the peer went away.

    ``code`` is the peer's close code, or None when no close frame arrived.
    """

    code: int | None
    reason: str


@dataclass(frozen=True)
class WsFailed:
    """The peer broke the WebSocket protocol or a limit; ``reason`` says how."""

    reason: str


#: What :meth:`WebSocketClient.receive` reports: each text message as a :data:`Message`, anything else as an event.
WsReceived = Union[str, bytes, WsOpened, WsClosed, WsFailed]


class WebSocketClient:
    """Turns bytes from the socket into gateway messages and closes, and messages into bytes.

    Unmasked, unfragmented text frames, nearly all the gateway sends, are cut out here
    directly: a frame that is whole in the buffer is handed on as its bytes, for the JSON
    parser to check and decode in one pass; a frame split across reads is decoded piece by
    piece as wsproto would. Every other frame (control frames, fragments, anything unusual,
    the closing handshake) is handed whole to wsproto, so both paths keep wsproto's rules.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        max_message_size: int,
        rng: random.Random,
        fast_path: bool = True,
        max_handshake_size: int = 64 * 1024,
    ) -> None:
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._rng = rng
        self._close_sent = False
        self._handshake = self._ws.send(Request(host=endpoint.host_header, target=endpoint.target))
        self._max_message_size = max_message_size
        self._max_handshake_size = max_handshake_size
        self._fast_path = fast_path
        self._upgraded = False
        self._buffer = bytearray()
        self._owed_to_wsproto = 0
        self._text_left = 0
        self._text_decoder = codecs.getincrementaldecoder("utf-8")()
        self._fragmented = False
        self._parts: list[str] = []
        self._size = 0
        self._finished = False
        self._events: list[WsReceived] = []
        self._out = bytearray()

    def handshake_bytes(self) -> bytes:
        """The upgrade request, to write once the socket is open."""
        return self._handshake

    @property
    def is_open(self) -> bool:
        """True while messages may be sent."""
        return self._upgraded and not self._finished and not self._close_sent

    def send_text(self, text: str) -> bytes:
        """The bytes of one text message."""
        return self._frame(OPCODE_TEXT, text.encode())

    def close(self, code: int, reason: str = "") -> bytes:
        """Start the closing handshake; the bytes of the close frame (empty once one was sent)."""
        if not self._upgraded or self._close_sent:
            return b""
        self._close_sent = True
        return self._frame(OPCODE_CLOSE, code.to_bytes(2, "big") + reason.encode()[:123])

    def _frame(self, opcode: int, payload: bytes) -> bytes:
        """One masked client frame; the mask comes from the injected rng, so one seed gives one byte stream."""
        return encode_frame(opcode, payload, self._rng.getrandbits(32).to_bytes(4, "big"))

    def receive(self, data: bytes) -> tuple[list[WsReceived], bytes]:
        """Feed bytes read from the socket (``b""`` at EOF); return what happened and bytes to write back.

        A text message that came whole in one read is its payload's bytes, UTF-8 not yet
        checked: the reader parses them and must fail the connection (1007) if they are not
        UTF-8. Any other text message was checked on the way and is a ``str``.
        """
        if self._finished:
            return [], b""
        self._events = []
        self._out = bytearray()
        try:
            if not data:
                self._to_wsproto(None)
                if not self._finished:
                    self._events.append(WsClosed(None, "the connection closed"))
                    self._finished = True
            elif not self._upgraded:
                self._receive_handshake(data)
            else:
                self._receive_frames(data)
        except Exception as exc:  # wsproto and h11 raise several types on malformed input
            self._fail(1002, f"malformed WebSocket data ({exc.__class__.__name__}: {exc})")
        return self._events, bytes(self._out)

    def _receive_handshake(self, data: bytes) -> None:
        # wsproto gets the response head alone, so every frame after it passes through _receive_frames.
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if (len(self._buffer) if end < 0 else end + 4) > self._max_handshake_size:
            limit = self._max_handshake_size
            self._fail(None, f"the upgrade answer's head is larger than max_http_header_size ({limit} bytes)")
            return
        if end < 0:
            return
        head = bytes(self._buffer[: end + 4])
        del self._buffer[: end + 4]
        self._to_wsproto(head)
        if self._upgraded and not self._finished:
            self._receive_frames(b"")

    def _receive_frames(self, data: bytes) -> None:
        """Read the frames in what earlier reads left over followed by ``data``; keep what is left over now."""
        buffer = data
        if self._buffer:
            # Left over: the start of a frame header, or whatever came with the upgrade answer.
            buffer = bytes(self._buffer) + data
            self._buffer.clear()
        events = self._events
        pos = 0
        while pos < len(buffer) and not self._finished:
            if self._text_left:
                pos = self._receive_text_part(buffer, pos)
                continue
            if self._owed_to_wsproto:
                chunk = buffer[pos : pos + self._owed_to_wsproto]
                pos += len(chunk)
                self._owed_to_wsproto -= len(chunk)
                self._to_wsproto(chunk)
                continue
            if self._fast_path and not self._fragmented:
                pos = self._receive_plain_texts(buffer, pos)
                if self._finished or pos == len(buffer):
                    break
            extent = frame_extent(buffer, pos)
            if extent is None:
                break
            first, header, length, masked = extent
            if (
                first == SIMPLE_TEXT
                and not masked
                and self._fast_path
                and not self._fragmented
                and length <= self._max_message_size
            ):
                end = pos + header + length
                if end > len(buffer):
                    # The rest is still on its way: decode what came, checking its UTF-8 as wsproto would.
                    self._text_left = length
                    self._text_decoder.reset()
                    pos += header
                    continue
                events.append(buffer[pos + header : end])
                pos = end
                continue
            opcode, fin = first & 0x0F, bool(first & 0x80)
            if opcode in (1, 2):
                self._fragmented = not fin
            elif opcode == 0 and fin:
                self._fragmented = False
            self._owed_to_wsproto = header + length
        self._buffer += buffer[pos:]

    def _receive_plain_texts(self, buffer: bytes, pos: int) -> int:
        """Cut out the run of whole plain text frames at ``pos`` (7- or 16-bit length); return where it ends.

        The frames are those the general loop in :meth:`_receive_frames` would cut out itself; this is that loop, unrolled.
        """
        events, limit = self._events, self._max_message_size
        size = len(buffer)
        while pos + 2 <= size and buffer[pos] == SIMPLE_TEXT:
            length = buffer[pos + 1]
            start = pos + 2
            if length == 126:
                if start + 2 > size:
                    break
                length = buffer[start] << 8 | buffer[start + 1]
                start += 2
                if length < 126:
                    break
            elif length > 126:
                break
            end = start + length
            if end > size or length > limit:
                break
            events.append(buffer[start:end])
            pos = end
        return pos

    def _receive_text_part(self, buffer: bytes, pos: int) -> int:
        """Decode what has come of a plain text frame that arrives in pieces; return where that ends."""
        end = min(len(buffer), pos + self._text_left)
        self._text_left -= end - pos
        try:
            self._parts.append(self._text_decoder.decode(buffer[pos:end], not self._text_left))
        except UnicodeDecodeError:
            self._fail(1007, "bad WebSocket frame: invalid UTF-8 in a text message")
            return end
        if not self._text_left:
            self._events.append("".join(self._parts))
            self._parts.clear()
        return end

    def _to_wsproto(self, data: bytes | None) -> None:
        self._ws.receive_data(data)
        for event in self._ws.events():
            if isinstance(event, TextMessage):
                self._size += len(event.data.encode())
                if self._size > self._max_message_size:
                    limit = self._max_message_size
                    self._fail(1009, f"a gateway message is larger than max_message_size ({limit} bytes)")
                    return
                self._parts.append(event.data)
                if event.message_finished:
                    self._events.append("".join(self._parts))
                    self._parts.clear()
                    self._size = 0
            elif isinstance(event, AcceptConnection):
                self._upgraded = True
                self._events.append(WsOpened())
            elif isinstance(event, Ping):
                if not self._close_sent:
                    self._out += self._frame(OPCODE_PONG, bytes(event.payload))
            elif isinstance(event, CloseConnection):
                self._closed(event)
                return
            elif isinstance(event, RejectConnection):
                self._fail(None, f"the gateway refused the upgrade with HTTP {event.status_code}")
                return
            elif isinstance(event, BytesMessage):
                self._fail(1003, "the gateway sent a binary message")
                return

    def _closed(self, event: CloseConnection) -> None:
        state = self._ws.state
        if state is ConnectionState.OPEN:
            # wsproto reports a frame it could not parse as a close it has not sent yet.
            self._fail(event.code, f"bad WebSocket frame: {event.reason}")
            return
        if not self._close_sent:
            self._out += self.close(event.code if event.code not in NO_ECHO else 1000)
        code: int | None = None if event.code == ABNORMAL_CLOSURE else int(event.code)
        self._events.append(WsClosed(code, event.reason or ""))
        self._finished = True

    def _fail(self, code: int | None, reason: str) -> None:
        if self._finished:
            return
        if code is not None:
            try:
                self._out += self.close(code, reason[:100])
            except Exception:
                pass
        self._events.append(WsFailed(reason))
        self._finished = True
