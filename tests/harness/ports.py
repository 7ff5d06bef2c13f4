"""Loopback TCP ports for the servers that integration tests start.

Every test server binds 127.0.0.1 only. ``free_port()`` asks the kernel for an unused port and
never hands the same number out twice in one test process, so two servers created back to back
(say a Postfix listener and the LMTP sink it delivers to) cannot be given the same port.
"""

from __future__ import annotations

import socket
import threading
import time

LOOPBACK = "127.0.0.1"

_issued: set[int] = set()
_issued_lock = threading.Lock()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now and was not returned before."""
    with _issued_lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((LOOPBACK, 0))
                port = int(sock.getsockname()[1])
            if port not in _issued:
                _issued.add(port)
                return port


def is_listening(port: int, host: str = LOOPBACK) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_listening(port: int, timeout: float, host: str = LOOPBACK) -> bool:
    """Poll until ``host:port`` accepts connections; False if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        if is_listening(port, host):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
