"""TLS for an asyncio socket over memory BIOs: an open connection holds no read buffer of its own.

asyncio's own TLS protocol keeps a 256 KiB read buffer for every connection; here every
connection of a thread's loop reads TCP bytes into, and decrypts them through, one shared buffer,
so an idle socket costs only its TLS state.
"""

from __future__ import annotations

import asyncio
import enum
import ssl
import threading
from typing import cast

__all__ = ["TLSTransport", "open_tls"]


#: How many bytes to read from TCP, and to decrypt, at a time (asyncio's own TLS reads as much).
READ_SIZE = 256 * 1024

_per_thread = threading.local()


def _shared_buffer() -> memoryview:
    """The one read buffer of this thread's loop: each use ends before the callback that made it returns."""
    buffer: memoryview | None = getattr(_per_thread, "buffer", None)
    if buffer is None:
        buffer = _per_thread.buffer = memoryview(bytearray(READ_SIZE))
    return buffer


class _State(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSING = "closing"  # our close_notify is out; waiting for the peer's, or for its TCP to end
    CLOSED = "closed"
    FAILED = "failed"  # the handshake did not finish: the application never heard of the socket


async def open_tls(
    loop: asyncio.AbstractEventLoop,
    app: asyncio.Protocol,
    host: str,
    port: int,
    context: ssl.SSLContext,
    server_hostname: str | None,
) -> None:
    """Connect TCP and shake hands; ``app`` gets ``connection_made`` once the peer is verified as ``context`` says.

    A failed handshake raises its error; cancelling aborts the connection at any point.
    """
    layer = TLSTransport(loop, app, context, host if server_hostname is None else server_hostname)
    await loop.create_connection(lambda: layer, host, port)
    try:
        await layer.handshake
    except BaseException:
        layer.abort()
        raise


class TLSTransport(asyncio.Transport, asyncio.BufferedProtocol):
    """TLS between a TCP connection and ``app``: the protocol of the one, the transport of the other.

    ``app`` hears of the end from ``connection_lost`` alone: None once the peer ended TLS or TCP,
    else the error that ended it (an ``ssl.SSLError`` when TLS failed).
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, app: asyncio.Protocol, context: ssl.SSLContext, server_hostname: str
    ) -> None:
        super().__init__()
        self._app = app
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        self._tcp: asyncio.Transport | None = None
        self._state = _State.HANDSHAKE
        self._error: Exception | None = None  # why the connection was aborted, for the application
        self.handshake: asyncio.Future[None] = loop.create_future()

    # -- the TCP connection's protocol ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._tcp = transport
        self._shake_hands()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _shared_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self._incoming.write(_shared_buffer()[:nbytes])
        if self._state is _State.HANDSHAKE:
            self._shake_hands()
        elif self._state is _State.OPEN:
            self._read()
        elif self._state is _State.CLOSING:
            self._shut_down()

    def connection_lost(self, exc: Exception | None) -> None:
        state, self._state = self._state, _State.CLOSED
        if state is _State.HANDSHAKE:
            self._state = _State.FAILED
            self._settle_handshake(exc or ConnectionResetError("the connection ended during the TLS handshake"))
        elif state is not _State.FAILED:
            self._app.connection_lost(exc or self._error)

    def pause_writing(self) -> None:
        self._app.pause_writing()

    def resume_writing(self) -> None:
        self._app.resume_writing()

    # -- the application's transport --------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt and send ``data``; nothing once the connection is closing (as asyncio's transports do)."""
        if self._state is not _State.OPEN:
            return
        try:
            self._tls.write(data)
        except ssl.SSLError as exc:  # SSLWantReadError too: a TLS 1.2 renegotiation the peer began
            self._fail(exc)
            return
        self._flush()

    def close(self) -> None:
        """Send close_notify; TCP closes once the peer answers with its own or ends the connection."""
        if self._state is _State.OPEN:
            self._state = _State.CLOSING
            if self._tcp is not None:
                self._tcp.resume_reading()  # the peer's answer must get in, even if the application paused
            self._shut_down()

    def abort(self) -> None:
        """Close TCP at once, whatever is unsent."""
        if self._state is _State.HANDSHAKE:
            self._state = _State.FAILED
        elif self._state is not _State.FAILED:
            self._state = _State.CLOSED
        if self._tcp is not None:
            self._tcp.abort()

    def pause_reading(self) -> None:
        if self._tcp is not None and self._state is _State.OPEN:
            self._tcp.pause_reading()

    def resume_reading(self) -> None:
        if self._tcp is not None:
            self._tcp.resume_reading()

    # -- TLS ----------------------------------------------------------------------------

    def _shake_hands(self) -> None:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except ssl.SSLError as exc:  # a certificate or hostname that fails verification among them
            self._state = _State.FAILED
            self._settle_handshake(exc)
            self._flush()  # the alert tells the peer why
            assert self._tcp is not None
            self._tcp.close()
            return
        self._flush()
        self._state = _State.OPEN
        self._app.connection_made(self)
        self._settle_handshake(None)
        if self._state is _State.OPEN:
            self._read()  # application bytes that came with the handshake's last flight

    def _settle_handshake(self, exc: Exception | None) -> None:
        if self.handshake.done():  # cancelled: the opener gave up
            return
        if exc is None:
            self.handshake.set_result(None)
        else:
            self.handshake.set_exception(exc)

    def _read(self) -> None:
        """Hand the application every byte that decrypts now; answer the peer's close_notify with ours."""
        buffer = _shared_buffer()
        size = 0
        ended = False
        error: ssl.SSLError | None = None
        try:
            while count := cast(int, self._tls.read(READ_SIZE - size, buffer[size:])):  # typeshed says bytes
                size += count
                if size == READ_SIZE:  # more may be waiting: hand this much over first
                    size = 0
                    self._app.data_received(bytes(buffer))
                    if self._state is not _State.OPEN:  # the application closed or aborted meanwhile
                        if self._state is _State.CLOSING:
                            self._shut_down()  # the peer's close_notify may be among what is left
                        return
            ended = True
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:  # a bad record, or the peer's alert
            error = exc
        if size:
            self._app.data_received(bytes(buffer[:size]))
        if error is not None:
            self._fail(error)
        elif self._state is not _State.OPEN:  # the application closed it meanwhile
            return
        elif ended:
            self.close()
        else:
            self._flush()  # what reading produced, such as the answer to a key update

    def _shut_down(self) -> None:
        try:
            self._tls.unwrap()
        except ssl.SSLWantReadError:  # ours is out, the peer's has not come yet
            self._flush()
            return
        except ssl.SSLError as exc:
            self._fail(exc)
            return
        self._flush()
        self._state = _State.CLOSED
        assert self._tcp is not None
        self._tcp.close()

    def _fail(self, exc: Exception) -> None:
        self._error = exc
        self.abort()

    def _flush(self) -> None:
        if self._outgoing.pending:
            assert self._tcp is not None
            self._tcp.write(self._outgoing.read())
