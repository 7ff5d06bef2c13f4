"""A corpus of malformed and hostile messages, as raw bytes (CRLF line ends).

Each entry is something real mail servers receive: broken MIME from buggy mailers, spam kits and
fuzzers. None may crash a worker or be lost; each must end processed, skipped or dead-lettered.
"""

from __future__ import annotations

import base64


def _message(headers: list[str], body: bytes | str, *, n: int) -> bytes:
    base = [f"From: Sender {n} <sender{n}@example.org>", f"Message-ID: <c{n}@example.org>"]
    if not any(h.startswith("To:") for h in headers):
        base.append("To: bot@agents.test")
    head = "".join(f"{h}\r\n" for h in [*base, *headers]).encode("utf-8", "surrogateescape")
    data = body if isinstance(body, bytes) else body.encode("utf-8")
    return head + b"\r\n" + data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def nested_multipart(depth: int) -> bytes:
    """``depth`` levels of multipart/mixed, each with its own boundary, text at the bottom."""
    body = "Content-Type: text/plain\r\n\r\nbottom of the well\r\n"
    for level in range(depth):
        body = (
            f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n{body}--b{level}--\r\n'
        )
    return body.encode()


def corpus() -> dict[str, bytes]:
    """Name -> raw message."""
    # Folded (RFC 5322 2.2.3): one physical line would exceed the 1000-octet line limit.
    many = ",\r\n ".join(["bot@agents.test"] + [f"person{i}@example.net" for i in range(10_000)])
    entries: dict[str, bytes] = {}
    add = entries.__setitem__
    add(
        "missing_boundary_parameter",
        _message(
            ["Subject: no boundary", "MIME-Version: 1.0", "Content-Type: multipart/mixed"],
            "--x\nContent-Type: text/plain\n\nhello\n--x--\n",
            n=1,
        ),
    )
    add(
        "boundary_never_used",
        _message(
            ["Subject: ghost boundary", 'Content-Type: multipart/mixed; boundary="nowhere"'],
            "just text, no parts at all\n",
            n=2,
        ),
    )
    add(
        "unterminated_multipart",
        _message(
            ["Subject: cut off", 'Content-Type: multipart/alternative; boundary="b"'],
            "--b\nContent-Type: text/plain\n\nfirst part\n--b\nContent-Type: text/html\n\n<p>sec",
            n=3,
        ),
    )
    add(
        "bad_base64",
        _message(
            ["Subject: bad base64", "Content-Type: text/plain", "Content-Transfer-Encoding: base64"],
            "!!!! this is *not* base64 ====\n@@@@\nSGVsbG8\n",
            n=4,
        ),
    )
    add(
        "unknown_charset",
        _message(
            ["Subject: =?x-unknown?B?SGVsbG8=?=", "Content-Type: text/plain; charset=x-unknown"],
            b"caf\xe9 \xff\xfe bytes in an unknown charset\n",
            n=5,
        ),
    )
    add(
        "eight_bit_headers",
        _message(
            ["Subject: caf\udce9 cr\udcc3\udca8me", "X-Raw: \udcff\udcfe\udc80"],
            "8-bit bytes in the header section\n",
            n=6,
        ),
    )
    add(
        "nul_bytes",
        _message(["Subject: nul\x00here", "X-Nul: \x00\x00"], b"body with \x00 NUL \x00 bytes\n", n=7),
    )
    add("deeply_nested_multiparts", _message(["Subject: nested 100 deep"], b"", n=8) + nested_multipart(100))
    add("ten_thousand_recipients", _message([f"To: {many}", "Subject: to everyone"], "hi all\n", n=9))
    add(
        "garbage_pdf_attachment",
        _message(
            ["Subject: invoice", 'Content-Type: multipart/mixed; boundary="p"'],
            "--p\nContent-Type: text/plain\n\nsee attached\n--p\n"
            'Content-Type: application/pdf; name="invoice.pdf"\nContent-Transfer-Encoding: base64\n\n'
            + base64.encodebytes(b"%PDF-1.7\n" + bytes(range(256)) * 20).decode()
            + "--p--\n",
            n=10,
        ),
    )
    add(
        "bad_encoded_words_and_dates",
        _message(
            [
                "Subject: =?utf-8?Q?=ZZ=?= =?utf-8?B?####?= =??x?=",
                "Date: Mon, 99 Foo 20000 99:99:99 +9999",
                "References: <<a@b>> <<<",
                "In-Reply-To: not an id",
            ],
            "text\n",
            n=11,
        ),
    )
    add(
        "broken_quoted_printable",
        _message(
            [
                "Subject: qp",
                "Content-Type: text/html; charset=utf-8",
                "Content-Transfer-Encoding: quoted-printable",
            ],
            "<p>=E2=8=\n=XX=\n<script>alert(1)</script>",
            n=12,
        ),
    )
    add("no_header_section", b"just a line of text without any header\r\n\r\nmore\r\n")
    add("headers_only", b"From: a@example.org\r\nTo: bot@agents.test\r\nSubject: no body\r\n")
    add(
        "rfc822_loop",
        _message(
            ["Subject: forwarded", "Content-Type: message/rfc822"],
            b"Content-Type: message/rfc822\r\n\r\n" * 50 + b"From: x@y\r\n\r\ninner\r\n",
            n=15,
        ),
    )
    return entries
