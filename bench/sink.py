"""A bare LMTP sink: the baseline mailhook's ingest is compared with.

aiosmtpd's own ``LMTP`` protocol with a handler whose ``handle_DATA`` answers ``250`` once per
recipient (RFC 2033 §4.2) and keeps nothing: no parsing, no database, no disk. It is configured
like mailhook's LMTP door (``mailhook/doors/listener.py``: same aiosmtpd version, raw bytes,
SMTPUTF8, one event loop, ``loop.create_server``), so the difference between the two is what
mailhook does per message, not the protocol library.

Run on its own (prints ``listening HOST:PORT`` when ready; SIGTERM or Ctrl-C stops it)::

    .venv/bin/python -m bench.sink --port 8025
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from aiosmtpd.lmtp import LMTP

#: mailhook's default ``lmtp.max_message_bytes``.
DATA_SIZE_LIMIT = 25 * 1024 * 1024


class SinkHandler:
    """Accepts every recipient and every message; one ``250`` per recipient after DATA."""

    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        return "\r\n".join(["250 2.0.0 OK"] * max(1, len(envelope.rcpt_tos)))


async def serve(host: str, port: int) -> None:
    """Listen on ``host:port`` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    handler = SinkHandler()

    def factory() -> LMTP:
        return LMTP(
            handler,
            data_size_limit=DATA_SIZE_LIMIT,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname="sink.bench",
            loop=loop,
        )

    server = await loop.create_server(factory, host, port, reuse_address=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"listening {host}:{port}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
