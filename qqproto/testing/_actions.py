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
    """Close the TCP socket ``conn_id``; the platform makes no further use of that id."""

    conn_id: int


ServerAction = Union[ServerSend, ServerClose]
