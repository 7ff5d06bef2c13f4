"""The Sendmail milter protocol, version 6: packet framing, command decoding, reply encoding.

No I/O here. The wire format (libmilter's ``mfdef.h``; Postfix implements the MTA side in
``src/milter/milter8.c``): every packet is a 4-byte big-endian length, then one command byte,
then ``length - 1`` bytes of data. Strings are NUL-terminated. The MTA sends commands
(``SMFIC_*``), the milter answers with replies (``SMFIR_*``); some commands get no answer
(``MACRO``, ``ABORT``, ``QUIT``, ``QUIT_NC``).

:class:`PacketDecoder` is fed whatever the socket returns and hands out whole packets. It checks
a declared length against its cap *before* buffering the data, so a hostile peer announcing
4 GiB costs five bytes, not memory. Everything malformed is a :class:`ProtocolError`, on which the
server closes the connection (the MTA then applies its ``default_action`` for this milter).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

VERSION = 6
"""The protocol version we speak (Postfix >= 2.6 and Sendmail 8.14 offer 6)."""

# --- commands, MTA -> milter (mfdef.h) ---------------------------------------------------------
SMFIC_ABORT = b"A"
SMFIC_BODY = b"B"
SMFIC_CONNECT = b"C"
SMFIC_MACRO = b"D"
SMFIC_BODYEOB = b"E"
SMFIC_HELO = b"H"
SMFIC_QUIT_NC = b"K"
SMFIC_HEADER = b"L"
SMFIC_MAIL = b"M"
SMFIC_EOH = b"N"
SMFIC_OPTNEG = b"O"
SMFIC_QUIT = b"Q"
SMFIC_RCPT = b"R"
SMFIC_DATA = b"T"
SMFIC_UNKNOWN = b"U"

COMMANDS = frozenset(
    {
        SMFIC_ABORT,
        SMFIC_BODY,
        SMFIC_CONNECT,
        SMFIC_MACRO,
        SMFIC_BODYEOB,
        SMFIC_HELO,
        SMFIC_QUIT_NC,
        SMFIC_HEADER,
        SMFIC_MAIL,
        SMFIC_EOH,
        SMFIC_OPTNEG,
        SMFIC_QUIT,
        SMFIC_RCPT,
        SMFIC_DATA,
        SMFIC_UNKNOWN,
    }
)

# --- replies, milter -> MTA --------------------------------------------------------------------
SMFIR_ACCEPT = b"a"
SMFIR_CONTINUE = b"c"
SMFIR_ADDHEADER = b"h"
SMFIR_INSHEADER = b"i"
SMFIR_CHGHEADER = b"m"
SMFIR_PROGRESS = b"p"
SMFIR_QUARANTINE = b"q"
SMFIR_REPLYCODE = b"y"
SMFIR_TEMPFAIL = b"t"

# --- actions the milter may take (negotiated in OPTNEG) ----------------------------------------
SMFIF_ADDHDRS = 0x01
SMFIF_CHGBODY = 0x02
SMFIF_ADDRCPT = 0x04
SMFIF_DELRCPT = 0x08
SMFIF_CHGHDRS = 0x10
SMFIF_QUARANTINE = 0x20

# --- protocol steps the milter may skip or not answer ------------------------------------------
SMFIP_NOUNKNOWN = 0x100
SMFIP_NODATA = 0x200

_LENGTH = struct.Struct(">I")
_OPTNEG = struct.Struct(">III")
_INDEX = struct.Struct(">I")

DEFAULT_MAX_PACKET = 1024 * 1024
"""Largest packet accepted. Postfix sends body chunks of at most 64 KiB (unless the milter asks
for more with SMFIP_MDS_*, which we never do) and headers up to ``header_size_limit`` (100 KiB)."""


class ProtocolError(Exception):
    """The peer broke the protocol; the connection is closed. The text names no message content."""


@dataclass(frozen=True)
class Packet:
    """One command: its byte and its data (without the length and command byte)."""

    command: bytes
    data: bytes


@dataclass(frozen=True)
class OptNeg:
    """SMFIC_OPTNEG: what the MTA offers."""

    version: int
    actions: int
    protocol: int


class PacketDecoder:
    """Splits a byte stream into packets, refusing oversized and empty ones."""

    def __init__(self, max_packet: int = DEFAULT_MAX_PACKET) -> None:
        self.max_packet = max_packet
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        """Add bytes read from the socket."""
        self._buffer += data

    @property
    def pending(self) -> int:
        """Bytes buffered that do not yet make a whole packet."""
        return len(self._buffer)

    def next_packet(self) -> Packet | None:
        """The next whole packet, or None until more bytes arrive."""
        if len(self._buffer) < _LENGTH.size:
            return None
        (length,) = _LENGTH.unpack_from(self._buffer)
        if length == 0:
            raise ProtocolError("packet of length 0 has no command byte")
        if length > self.max_packet:
            raise ProtocolError(f"packet of {length} bytes exceeds the {self.max_packet}-byte limit")
        end = _LENGTH.size + length
        if len(self._buffer) < end:
            return None
        command = bytes(self._buffer[_LENGTH.size : _LENGTH.size + 1])
        data = bytes(self._buffer[_LENGTH.size + 1 : end])
        del self._buffer[:end]
        if command not in COMMANDS:
            raise ProtocolError(f"unknown command byte {command!r}")
        return Packet(command, data)


def encode(command: bytes, data: bytes = b"") -> bytes:
    """One packet on the wire."""
    return _LENGTH.pack(len(command) + len(data)) + command + data


# --- decoding command data ----------------------------------------------------------------------


def split_strings(data: bytes) -> list[bytes]:
    """NUL-terminated strings; the last one must be terminated too."""
    if not data.endswith(b"\0"):
        raise ProtocolError("string data is not NUL-terminated")
    return data[:-1].split(b"\0")


def parse_optneg(data: bytes) -> OptNeg:
    """Version, action mask and protocol mask; trailing data (v6 macro lists) is ignored."""
    if len(data) < _OPTNEG.size:
        raise ProtocolError("OPTNEG is shorter than 12 bytes")
    return OptNeg(*_OPTNEG.unpack_from(data))


def parse_macros(data: bytes) -> dict[str, str]:
    """SMFIC_MACRO: the command the macros belong to, then name/value pairs."""
    if not data:
        raise ProtocolError("MACRO without a command byte")
    strings = split_strings(data[1:]) if len(data) > 1 else []
    if len(strings) % 2:
        raise ProtocolError("MACRO with a name but no value")
    pairs = zip(strings[::2], strings[1::2], strict=True)
    return {name.decode("utf-8", "replace"): value.decode("utf-8", "replace") for name, value in pairs}


def parse_header(data: bytes) -> tuple[bytes, bytes]:
    """SMFIC_HEADER: name and value (Postfix strips the one space after the colon)."""
    strings = split_strings(data)
    if len(strings) != 2 or not strings[0]:
        raise ProtocolError("HEADER is not exactly a name and a value")
    return strings[0], strings[1]


def parse_address_args(data: bytes) -> str:
    """SMFIC_MAIL / SMFIC_RCPT: the address (``<a@b>``), then ESMTP arguments we ignore."""
    strings = split_strings(data)
    return strings[0].decode("utf-8", "replace").strip().strip("<>").strip()


# --- encoding replies ---------------------------------------------------------------------------


def optneg_reply(version: int, actions: int, protocol: int) -> bytes:
    """Our side of the negotiation."""
    return encode(SMFIC_OPTNEG, _OPTNEG.pack(version, actions, protocol))


def _header_text(value: str, what: str) -> bytes:
    data = value.encode("utf-8")
    if b"\0" in data or b"\r" in data or b"\n" in data:
        raise ValueError(f"a header {what} may not contain NUL, CR or LF")
    return data


def add_header(name: str, value: str) -> bytes:
    """SMFIR_ADDHEADER: append a header at the end of the header section."""
    return encode(SMFIR_ADDHEADER, _header_text(name, "name") + b"\0" + _header_text(value, "value") + b"\0")


def insert_header(index: int, name: str, value: str) -> bytes:
    """SMFIR_INSHEADER: insert before the ``index``-th header (0: at the top)."""
    body = _header_text(name, "name") + b"\0" + _header_text(value, "value") + b"\0"
    return encode(SMFIR_INSHEADER, _INDEX.pack(index) + body)


def change_header(index: int, name: bytes, value: str = "") -> bytes:
    """SMFIR_CHGHEADER: replace the ``index``-th (from 1) header called ``name``; an empty
    value deletes it. ``name`` is bytes: it is echoed back exactly as the MTA sent it."""
    if index < 1:
        raise ValueError("header indexes count from 1")
    return encode(SMFIR_CHGHEADER, _INDEX.pack(index) + name + b"\0" + _header_text(value, "value") + b"\0")


def quarantine(reason: str) -> bytes:
    """SMFIR_QUARANTINE: Postfix moves the message to its hold queue, logging ``reason``."""
    return encode(SMFIR_QUARANTINE, _header_text(reason, "reason") + b"\0")


def reply_code(code: str, enhanced: str, text: str) -> bytes:
    """SMFIR_REPLYCODE: the MTA answers the client with this SMTP reply (a 4xx or 5xx ends the
    transaction; RFC 5321 4.2 and RFC 3463 enhanced codes)."""
    if len(code) != 3 or code[0] not in "45" or not code.isdigit():
        raise ValueError("a milter reply code is a 4xx or 5xx SMTP code")
    return encode(SMFIR_REPLYCODE, _header_text(f"{code} {enhanced} {text}", "reply") + b"\0")


CONTINUE = encode(SMFIR_CONTINUE)
ACCEPT = encode(SMFIR_ACCEPT)
TEMPFAIL = encode(SMFIR_TEMPFAIL)
