"""The server side of one HTTP/1.1 connection (h11): whole requests in, JSON answers out."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

import h11

from ._json import dumps

__all__ = ["BadRequest", "HTTPRequest", "HTTPServer", "reason_phrase"]

MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class HTTPRequest:
    """A complete request; header names are lower case, the path has no query.

    ``upgrade`` is True when the client proposed a protocol switch (an ``Upgrade`` header).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    upgrade: bool


class BadRequest(Exception):
    """The client broke HTTP; answer ``status`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HTTPServer:
    """Parses requests one at a time and serialises the answers the platform gives."""

    def __init__(self) -> None:
        self._h11 = h11.Connection(h11.SERVER)
        self._request: h11.Request | None = None
        self._body = bytearray()
        self.peer_closed = False

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the client; ``b""`` means it closed its side."""
        if not self.peer_closed:
            self._h11.receive_data(data)
            self.peer_closed = not data

    def next_request(self) -> HTTPRequest | None:
        """The next complete request, or None until more bytes arrive or the peer closed."""
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise BadRequest(exc.error_status_hint, str(exc)) from exc
            if event is h11.NEED_DATA or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                return None
            if isinstance(event, h11.Request):
                self._request = event
                self._body.clear()
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > MAX_BODY:
                    raise BadRequest(413, "request body too large")
            elif isinstance(event, h11.EndOfMessage) and self._request is not None:
                return self._finish(self._request)

    def _finish(self, request: h11.Request) -> HTTPRequest:
        target = request.target.decode("ascii", "replace")
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers}
        return HTTPRequest(
            method=request.method.decode("ascii", "replace"),
            path=target.split("?", 1)[0],
            headers=headers,
            body=bytes(self._body),
            upgrade=bool(headers.get("upgrade")),
        )

    @property
    def must_close(self) -> bool:
        """True once the connection cannot carry another request."""
        return self._h11.our_state is not h11.IDLE

    def respond(self, status: int, body: object, extra_headers: tuple[tuple[str, str], ...] = ()) -> bytes:
        """A JSON answer to the current request, or b"" if no answer can be sent any more."""
        if self._h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return b""
        payload = dumps(body).encode()
        headers = [("content-type", "application/json"), ("content-length", str(len(payload))), *extra_headers]
        if self._h11.their_state is h11.ERROR:
            headers.append(("connection", "close"))
        response = h11.Response(status_code=status, headers=headers, reason=reason_phrase(status).encode())
        data = self._h11.send(response) or b""
        data += self._h11.send(h11.Data(data=payload)) or b""
        data += self._h11.send(h11.EndOfMessage()) or b""
        if self._ready_for_next():
            self._h11.start_next_cycle()
        return data

    def _ready_for_next(self) -> bool:
        return self._h11.states == {h11.CLIENT: h11.DONE, h11.SERVER: h11.DONE}

    def switch_protocols(self, headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
        """Answer 101 to the pending upgrade; returns its bytes and what the client sent after it."""
        data = self._h11.send(
            h11.InformationalResponse(status_code=101, headers=headers, reason=b"Switching Protocols")
        )
        return data or b"", self._h11.trailing_data[0]


def reason_phrase(status: int) -> str:
    """The standard reason phrase for ``status``, or "" for a non-standard one."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
