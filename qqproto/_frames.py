"""The WebSocket frame layout (RFC 6455 §5.2) for the common case: read a header, write a frame."""

from __future__ import annotations

__all__ = ["OPCODE_CLOSE", "OPCODE_PONG", "OPCODE_TEXT", "SIMPLE_TEXT", "encode_frame", "frame_extent", "unmask"]

OPCODE_TEXT, OPCODE_CLOSE, OPCODE_PONG = 0x1, 0x8, 0xA
# FIN set, no reserved bits, opcode 1: a whole text message in one frame.
SIMPLE_TEXT = 0x80 | OPCODE_TEXT
UNUSUAL = -1


def frame_extent(buffer: bytes | bytearray, pos: int) -> tuple[int, int, int, bool] | None:
    """Read the header at ``pos``: (first byte, header size, payload size, masked); None until it is all in.

    The first byte comes back as ``UNUSUAL`` when the length is not minimally encoded, which
    RFC 6455 forbids: such a frame must go to a full parser to be refused.
    """
    available = len(buffer) - pos
    if available < 2:
        return None
    first, second = buffer[pos], buffer[pos + 1]
    length = second & 0x7F
    header = 2
    if length == 126:
        if available < 4:
            return None
        length = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
        header = 4
        if length < 126:
            first = UNUSUAL
    elif length == 127:
        if available < 10:
            return None
        length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
        header = 10
        if length <= 0xFFFF or length >> 63:
            first = UNUSUAL
    masked = bool(second & 0x80)
    if masked:
        header += 4
    return first, header, length, masked


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the repeated 4-byte ``mask`` (masking and unmasking are the same)."""
    size = len(payload)
    keystream = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(size, "big")


def encode_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One final frame; clients pass a 4-byte ``mask``, servers none."""
    size = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    if size < 126:
        head = bytes((0x80 | opcode, mask_bit | size))
    elif size <= 0xFFFF:
        head = bytes((0x80 | opcode, mask_bit | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, mask_bit | 127)) + size.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + unmask(payload, mask)
