"""One trio socket of a driver: its task's cancel scope, the bytes waiting to be written, and how it opens."""

from __future__ import annotations

import math
import ssl

import trio

from qqproto import OpenSocket

__all__ = ["Socket", "connect"]


class Socket:
    """One socket's task scope and the bytes waiting to be written to it."""

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.outgoing, self.incoming = trio.open_memory_channel[bytes](math.inf)
        self.connected = False
        #: Set when the socket is dropped without a word (the shard is another process's now).
        self.aborted = False

    def abort(self) -> None:
        """Stop at once: nothing more is written, and the stream is closed without a TLS goodbye."""
        self.aborted = True
        self.outgoing.close()
        self.scope.cancel()


async def connect(action: OpenSocket, ssl_context: ssl.SSLContext) -> trio.abc.Stream:
    """Open TCP, and TLS on it (verified by ``ssl_context``) when the action asks for it."""
    tcp = await trio.open_tcp_stream(action.host, action.port)
    if not action.tls:
        return tcp
    stream = trio.SSLStream(tcp, ssl_context, server_hostname=action.server_hostname)
    try:
        await stream.do_handshake()
    except BaseException:
        await trio.aclose_forcefully(tcp)
        raise
    return stream
