"""What the fake platform asks its driver to do with the sockets it serves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

__all__ = ["ServerAction", "ServerClose", "ServerSend"]


@dataclass(frozen=True)
class ServerSend:
    """Write ``data`` to the client socket ``conn_id``."""

    conn_id: int
    data: bytes


@dataclass(frozen=True)
class ServerClose:
    """Close the TCP socket ``conn_id``; the platform makes no further use of that id.

    ``answer_due``: a WebSocket Close frame went out first, so let the client answer it before
    closing TCP (RFC 6455 §7.1.1); a client that reads EOF first reports 1006, not the code.
    """

    conn_id: int
    answer_due: bool = False


ServerAction = Union[ServerSend, ServerClose]
