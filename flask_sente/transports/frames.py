"""The one WebSocket frame that matters for speed, read and written directly.

Almost every message a channel socket carries is a whole message in one frame: a client's
masked text (or binary) frame in, the server's unmasked frame out. wsproto's general frame
machinery (fragments, control frames, extensions, every check) costs more per message than
the rest of a request/reply, so :class:`~.websocket.WsSession` reads and writes that frame
with the functions here (RFC 6455, section 5.2) and gives wsproto every other frame whole,
including every frame these functions do not fully accept, so that its errors are the ones
the client sees.
"""

from __future__ import annotations

from wsproto.frame_protocol import XorMaskerSimple

#: The first byte of a whole (FIN), plain (no RSV bits) text / binary frame.
TEXT_FRAME = 0x81
BINARY_FRAME = 0x82
#: Past this size wsproto's table-driven unmasking is the faster.
_SMALL = 1024


def frame_at(buf: bytes, pos: int) -> tuple[int, int, int, bool] | None:
    """The frame starting at ``buf[pos]``: its first byte, header length, payload length,
    and whether it is masked with its length minimally encoded (what a conforming client
    sends, and what the direct path requires). None until the whole header is in ``buf``."""
    end = len(buf)
    if end - pos < 2:
        return None
    second = buf[pos + 1]
    length = second & 0x7F
    masked = bool(second & 0x80)
    header = 2
    minimal = True
    if length == 126:
        if end - pos < 4:
            return None
        length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
        header = 4
        minimal = length >= 126
    elif length == 127:
        if end - pos < 10:
            return None
        length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
        header = 10
        minimal = 65536 <= length < 1 << 63
    if masked:
        header += 4
    if end - pos < header:
        return None
    return buf[pos], header, length, masked and minimal


def unmask(mask: bytes, data: bytes) -> bytes:
    """A client frame's payload, unmasked."""
    n = len(data)
    if n > _SMALL:
        return bytes(XorMaskerSimple(mask).process(bytearray(data)))
    if not n:
        return b""
    key = int.from_bytes((mask * ((n >> 2) + 1))[:n], "little")
    return (int.from_bytes(data, "little") ^ key).to_bytes(n, "little")


def frame(message: str | bytes) -> tuple[bytes, bytes]:
    """One server frame (unmasked, whole) carrying ``message`` (text for a str): its header
    and its payload, to be written one after the other."""
    if isinstance(message, str):
        payload, first = message.encode("utf-8"), TEXT_FRAME
    else:
        payload, first = message, BINARY_FRAME
    n = len(payload)
    if n < 126:
        return bytes((first, n)), payload
    if n < 65536:
        return bytes((first, 126)) + n.to_bytes(2, "big"), payload
    return bytes((first, 127)) + n.to_bytes(8, "big"), payload
