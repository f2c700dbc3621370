"""One HTTP/1.1 request and its response over a socket of its own, spoken through h11."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import h11

__all__ = ["Endpoint", "HttpExchange", "HttpFailure", "HttpResponse"]

# What a request line may carry as its target: visible ASCII, no spaces.
REQUEST_TARGET = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class Endpoint:
    """Where a URL points: host, port, TLS, and the request target."""

    host: str
    port: int
    tls: bool
    target: str

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """Split an http(s) or ws(s) URL that can go into a request line; raise ValueError for anything else."""
        parts: SplitResult = urlsplit(url)
        secure = {"https": True, "wss": True, "http": False, "ws": False}.get(parts.scheme)
        if secure is None or not parts.hostname:
            raise ValueError(f"not an http(s) or ws(s) URL: {url[:200]!r}")
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"not a valid host name in {url[:200]!r}") from None
        port = parts.port or (443 if secure else 80)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        if not REQUEST_TARGET.fullmatch(target):
            raise ValueError(f"the path of {url[:200]!r} is not printable ASCII")
        return cls(host, port, secure, target)

    @property
    def host_header(self) -> str:
        """The Host header value: the port appears only when it is not the scheme's default."""
        default = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    def join(self, path: str) -> Endpoint:
        """The same server with ``path`` appended to this endpoint's base path."""
        return Endpoint(self.host, self.port, self.tls, self.target.rstrip("/") + path)


@dataclass(frozen=True)
class HttpResponse:
    """A complete HTTP response."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header, matched without regard to case."""
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return None


@dataclass(frozen=True)
class HttpFailure:
    """The exchange could not produce a response; ``reason`` says why."""

    reason: str


class HttpExchange:
    """Sends one request and reads one response, within ``max_header_size`` per head and ``max_body_size``."""

    def __init__(
        self,
        method: str,
        endpoint: Endpoint,
        headers: list[tuple[str, str]],
        body: bytes = b"",
        *,
        max_header_size: int,
        max_body_size: int,
    ) -> None:
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_header_size)
        self._max_header_size = max_header_size
        self._max_body_size = max_body_size
        self._received = 0
        self._head_bytes = 0
        all_headers = [("Host", endpoint.host_header), *headers, ("Connection", "close")]
        if body or method == "POST":
            all_headers.append(("Content-Length", str(len(body))))
        events: list[h11.Event] = [h11.Request(method=method, target=endpoint.target, headers=all_headers)]
        if body:
            events.append(h11.Data(data=body))
        events.append(h11.EndOfMessage())
        self._request = b"".join(self._h11.send(event) or b"" for event in events)
        self._status = 0
        self._headers: tuple[tuple[str, str], ...] = ()
        self._body = bytearray()

    def request_bytes(self) -> bytes:
        """The bytes of the whole request, to write once the socket is open."""
        return self._request

    def receive_data(self, data: bytes) -> HttpResponse | HttpFailure | None:
        """Feed bytes read from the socket (``b""`` at EOF); a result once the response is complete."""
        try:
            self._received += len(data)
            self._h11.receive_data(data)
            while True:
                event = self._h11.next_event()
                if event is h11.NEED_DATA:
                    if data == b"":
                        return HttpFailure("the server closed the connection before the response was complete")
                    return None
                if isinstance(event, (h11.InformationalResponse, h11.Response)) and self._head_too_large():
                    return HttpFailure(self._head_limit_reason())
                if isinstance(event, h11.InformationalResponse):
                    continue
                if isinstance(event, h11.Response):
                    self._status = event.status_code
                    self._headers = tuple(
                        (name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in event.headers
                    )
                elif isinstance(event, h11.Data):
                    self._body += event.data
                    if len(self._body) > self._max_body_size:
                        limit = self._max_body_size
                        return HttpFailure(f"the response body is larger than max_http_body_size ({limit} bytes)")
                elif isinstance(event, h11.EndOfMessage):
                    return HttpResponse(self._status, self._headers, bytes(self._body))
                else:
                    return HttpFailure("the server closed the connection before the response was complete")
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431:  # h11's buffer of an incomplete head ran past the limit
                return HttpFailure(self._head_limit_reason())
            return HttpFailure(f"malformed HTTP response: {exc}")

    def _head_too_large(self) -> bool:
        """Measure the head just parsed; h11 checks only heads that arrive in pieces."""
        consumed = self._received - len(self._h11.trailing_data[0])
        size, self._head_bytes = consumed - self._head_bytes, consumed
        return size > self._max_header_size

    def _head_limit_reason(self) -> str:
        return f"the response head is larger than max_http_header_size ({self._max_header_size} bytes)"
