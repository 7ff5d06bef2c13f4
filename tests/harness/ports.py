"""Loopback TCP ports for the servers that integration tests start.

Every test server binds 127.0.0.1 only. ``free_port()`` hands out a port that is free now and
not one of the last :data:`_RECENT` it handed out, so two servers created back to back (say a
Postfix listener and the LMTP sink it delivers to) cannot be given the same port.

The ports come from below the kernel's ephemeral range (``net.ipv4.ip_local_port_range``, 32768
and up by default), from a block of its own for each pytest-xdist worker. A port the kernel
picked (``bind(port 0)``) could, between the check and the server's bind, become the source port
of any outgoing connection, or the port another worker's server was just given.
"""

from __future__ import annotations

import collections
import os
import random
import socket
import threading
import time

LOOPBACK = "127.0.0.1"
_FIRST, _BLOCK, _BLOCKS = 16000, 2000, 8  # 16000-31999: below the ephemeral range
_RECENT = 1000  # a whole suite asks for more ports than a block holds: numbers come round again

_issued: collections.deque[int] = collections.deque(maxlen=_RECENT)
_issued_lock = threading.Lock()
_shuffle = random.Random()  # not the process-wide generator, which hypothesis watches


def _block() -> range:
    """This process's ports: one block per xdist worker (gw0, gw1, ...), the first otherwise."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    start = _FIRST + (index % _BLOCKS) * _BLOCK
    return range(start, start + _BLOCK)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and not among the last ones handed out."""
    with _issued_lock:
        recent = set(_issued)
        candidates = [port for port in _block() if port not in recent]
        _shuffle.shuffle(candidates)
        for port in candidates:
            if _bindable(port):
                _issued.append(port)
                return port
    raise RuntimeError(f"no free port left in {_block()}")


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
