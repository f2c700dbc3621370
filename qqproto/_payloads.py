"""The gateway's JSON envelope: opcodes, the payloads the client sends, and parsing what arrives."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Callable
from typing import Any, NamedTuple, Union

try:
    import msgspec.json
except ImportError:  # without the "speed" extra, json parses alone
    msgspec = None  # type: ignore[assignment]

__all__ = ["BadPayload", "Message", "NotUtf8", "Opcode", "Payload", "heartbeat", "identify", "parse_payload", "resume"]

#: A gateway message as the WebSocket layer hands it over: text, or UTF-8 bytes not yet checked.
Message = Union[str, bytes]


class Opcode(enum.IntEnum):
    """Gateway opcodes (docs/protocol.md §3)."""

    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    RESUME = 6
    RECONNECT = 7
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11
    HTTP_CALLBACK_ACK = 12
    CALLBACK_VALIDATION = 13


class BadPayload(Exception):
    """A gateway message that is not a valid envelope; the message says what is wrong."""


class NotUtf8(BadPayload):
    """A text message that is not UTF-8: the WebSocket itself is broken (RFC 6455 §8.1), not just the message."""


class Payload(NamedTuple):
    """One parsed envelope ``{"op", "d", "s", "t", "id"}``."""

    op: int
    d: Any
    s: int | None
    t: str | None
    id: str | None


# What json.loads runs once it has skipped space and checked for a BOM: the C scanner of one value.
_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
# Builds a Payload without the Python-level __new__ of NamedTuple.
_new_tuple = tuple.__new__


def loads_stdlib(message: Message) -> Any:
    """``json.loads`` of a message's text; a text that is one JSON value, with no space around it, skips json's Python layers.

    Bytes are decoded as UTF-8 first, raising ``UnicodeDecodeError`` when they are not UTF-8.
    """
    text = message.decode("utf-8") if isinstance(message, bytes) else message
    try:
        obj, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)
    return obj if end == len(text) else json.loads(text)


#: The first parser to try: msgspec, straight from UTF-8 bytes, when the ``speed`` extra is installed.
fast_loads: Callable[[Message], Any] = loads_stdlib if msgspec is None else msgspec.json.Decoder().decode
JSON_PARSER = "json" if msgspec is None else "msgspec"


def loads(message: Message) -> Any:
    """The JSON value of a message exactly as ``json.loads`` reads its text, by the fastest parser at hand."""
    try:
        return fast_loads(message)
    except (ValueError, RecursionError):
        if fast_loads is loads_stdlib:
            raise
        # json accepts a little more than msgspec (NaN, infinities, lone surrogates in
        # escapes), and its error is the one reported.
        return loads_stdlib(message)


def parse_payload(message: Message) -> Payload:
    """Parse and check one gateway message, raising :class:`BadPayload` on anything malformed."""
    try:
        obj = loads(message)
    except UnicodeDecodeError:
        raise NotUtf8("gateway sent a text message that is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise BadPayload(f"gateway sent invalid JSON ({exc.__class__.__name__})") from None
    if type(obj) is not dict:
        raise BadPayload("gateway sent a JSON value that is not an object")
    get = obj.get
    op = get("op")
    if type(op) is not int:
        raise BadPayload("gateway message has no integer 'op'")
    s = get("s")
    if s is not None and type(s) is not int:
        raise BadPayload(f"gateway message has a non-integer 's' ({type(s).__name__})")
    t = get("t")
    if t is not None and type(t) is not str:
        raise BadPayload("gateway message has a non-string 't'")
    event_id = get("id")
    if event_id is not None and type(event_id) is not str:
        event_id = str(event_id)
    return _new_tuple(Payload, (op, get("d"), s, t, event_id))


def _dump(op: Opcode, d: Any) -> str:
    return json.dumps({"op": int(op), "d": d}, separators=(",", ":"), ensure_ascii=False)


def identify(token: str, intents: int, shard: tuple[int, int]) -> str:
    """The op 2 Identify message (docs/protocol.md §3.1)."""
    return _dump(
        Opcode.IDENTIFY,
        {
            "token": f"QQBot {token}",
            "intents": int(intents),
            "shard": [shard[0], shard[1]],
            "properties": {"$os": sys.platform, "$browser": "qqproto", "$device": "qqproto"},
        },
    )


def resume(token: str, session_id: str, seq: int | None) -> str:
    """The op 6 Resume message, with the token in the ``QQBot`` form most implementations send."""
    return _dump(Opcode.RESUME, {"token": f"QQBot {token}", "session_id": session_id, "seq": seq})


def heartbeat(seq: int | None) -> str:
    """The op 1 Heartbeat carrying the last sequence number received, or null."""
    return '{"op":1,"d":%s}' % ("null" if seq is None else int(seq))
