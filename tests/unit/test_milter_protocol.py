"""The milter codec: framing, caps on packet size, malformed and truncated packets, reply encoding."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhook.doors.milter import protocol as p
from mailhook.doors.milter.verdict import Collected, control_header_deletions


def frame(command: bytes, data: bytes = b"") -> bytes:
    return p.encode(command, data)


def test_packets_split_across_reads_come_out_whole() -> None:
    stream = frame(p.SMFIC_HELO, b"client.test\0") + frame(p.SMFIC_BODY, b"x" * 70_000)
    decoder = p.PacketDecoder()
    got = []
    for i in range(0, len(stream), 7):
        decoder.feed(stream[i : i + 7])
        while (packet := decoder.next_packet()) is not None:
            got.append(packet)
    assert got == [p.Packet(p.SMFIC_HELO, b"client.test\0"), p.Packet(p.SMFIC_BODY, b"x" * 70_000)]
    assert decoder.pending == 0


def test_a_truncated_packet_waits_for_more_and_is_never_half_delivered() -> None:
    decoder = p.PacketDecoder()
    decoder.feed(frame(p.SMFIC_HELO, b"client.test\0")[:-3])
    assert decoder.next_packet() is None


def test_oversized_length_is_refused_before_its_data_is_buffered() -> None:
    decoder = p.PacketDecoder(max_packet=1024)
    decoder.feed(struct.pack(">I", 0xFFFFFFFF) + b"B")
    with pytest.raises(p.ProtocolError, match="exceeds"):
        decoder.next_packet()


@pytest.mark.parametrize(
    ("stream", "problem"),
    [
        (struct.pack(">I", 0), "length 0"),
        (struct.pack(">I", 1) + b"Z", "unknown command"),
        (struct.pack(">I", 1) + b"\0", "unknown command"),
    ],
)
def test_malformed_frames_are_protocol_errors(stream: bytes, problem: str) -> None:
    decoder = p.PacketDecoder()
    decoder.feed(stream)
    with pytest.raises(p.ProtocolError, match=problem):
        decoder.next_packet()


@pytest.mark.parametrize(
    ("parse", "data"),
    [
        (p.parse_optneg, b"\0\0\0\6"),
        (p.parse_macros, b""),
        (p.parse_macros, b"M{auth_authen}\0"),
        (p.parse_macros, b"Mi\0ABC"),
        (p.parse_header, b"Subject\0"),
        (p.parse_header, b"\0value\0"),
        (p.parse_header, b"Subject\0value"),
        (p.parse_header, b"A\0b\0c\0"),
        (p.parse_address_args, b"<a@b>"),
        (p.parse_address_args, b""),
    ],
)
def test_malformed_command_data_is_a_protocol_error(parse: object, data: bytes) -> None:
    with pytest.raises(p.ProtocolError):
        parse(data)  # type: ignore[operator]


def test_command_data_decodes() -> None:
    assert p.parse_optneg(struct.pack(">III", 6, 0x1FF, 0x1FFFFF) + b"extra") == p.OptNeg(6, 0x1FF, 0x1FFFFF)
    assert p.parse_macros(b"Mi\0ABC123\0{auth_authen}\0bot\0") == {"i": "ABC123", "{auth_authen}": "bot"}
    assert p.parse_macros(b"C") == {}
    assert p.parse_header(b"Subject\0hi there\0") == (b"Subject", b"hi there")
    assert p.parse_address_args(b"<Bot@Agents.test>\0SIZE=100\0BODY=8BITMIME\0") == "Bot@Agents.test"


def test_replies_encode_as_libmilter_expects() -> None:
    assert p.CONTINUE == b"\0\0\0\1c"
    assert p.TEMPFAIL == b"\0\0\0\1t"
    assert p.add_header("X-A", "1") == b"\0\0\0\7hX-A\0" + b"1\0"
    assert p.change_header(2, b"x-mailhook-score") == b"\0\0\0\x17m\0\0\0\2x-mailhook-score\0\0"
    assert p.insert_header(0, "X-A", "1") == b"\0\0\0\x0bi\0\0\0\0X-A\0" + b"1\0"
    assert p.quarantine("why") == b"\0\0\0\5qwhy\0"
    assert p.reply_code("550", "5.7.1", "no") == p.encode(b"y", b"550 5.7.1 no\0")
    with pytest.raises(ValueError, match="4xx or 5xx"):
        p.reply_code("250", "2.0.0", "ok")
    assert p.optneg_reply(6, 0x31, 0x300) == b"\0\0\0\x0dO" + struct.pack(">III", 6, 0x31, 0x300)


@pytest.mark.parametrize("bad", ["a\0b", "a\r\nBcc: x@y", "a\nb"])
def test_replies_refuse_header_injection(bad: str) -> None:
    with pytest.raises(ValueError, match="NUL, CR or LF"):
        p.add_header("X-A", bad)
    with pytest.raises(ValueError, match="NUL, CR or LF"):
        p.quarantine(bad)
    with pytest.raises(ValueError, match="count from 1"):
        p.change_header(0, b"X-A")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096), st.integers(min_value=1, max_value=64))
def test_any_byte_stream_yields_packets_or_a_protocol_error(stream: bytes, step: int) -> None:
    decoder = p.PacketDecoder(max_packet=512)
    try:
        for i in range(0, len(stream), step):
            decoder.feed(stream[i : i + step])
            while (packet := decoder.next_packet()) is not None:
                assert packet.command in p.COMMANDS
                assert len(packet.data) < 512
            assert decoder.pending <= 512 + 4 + step, "memory stays bounded"
    except p.ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(p.COMMANDS)), st.binary(max_size=300)), max_size=20))
def test_encoded_packets_decode_to_themselves(packets: list[tuple[bytes, bytes]]) -> None:
    decoder = p.PacketDecoder()
    decoder.feed(b"".join(frame(c, d) for c, d in packets))
    got = []
    while (packet := decoder.next_packet()) is not None:
        got.append((packet.command, packet.data))
    assert got == packets


def test_control_header_deletions_count_per_name_and_go_highest_first() -> None:
    headers = [
        (b"Received", b"from x"),
        (b"X-Mailhook-Score", b"-100"),
        (b"Subject", b"hi"),
        (b"x-mailhook-score", b"0"),
        (b"X-MAILHOOK-RULES", b"none"),
        (b"X-Mailhook-Guard", b"pass"),
    ]
    assert control_header_deletions(headers) == (
        (b"x-mailhook-score", 2),
        (b"X-Mailhook-Score", 1),
        (b"X-MAILHOOK-RULES", 1),
        (b"X-Mailhook-Guard", 1),
    )


def test_collected_message_rebuilds_crlf_text_with_folded_headers() -> None:
    message = Collected(headers=[(b"Subject", b"one\n\ttwo"), (b"From", b"a@b")], body=bytearray(b"hi\r\n"))
    assert message.raw() == b"Subject: one\r\n\ttwo\r\nFrom: a@b\r\n\r\nhi\r\n"
