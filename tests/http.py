"""Run the real ASGI app under uvicorn in the test's own event loop (no thread, no portal)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn


@asynccontextmanager
async def serve_http(app: Any, port: int) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1:``port`` until the block ends; yields the base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(1200):  # the lifespan starts the doors and workers: slow on a busy machine
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    if not server.started:
        # uvicorn ends a failed start with sys.exit(); a SystemExit escaping a fixture would end
        # the whole test worker, so it becomes an ordinary error (uvicorn logged the cause).
        try:
            task.result()
        except SystemExit as exc:
            raise RuntimeError(f"uvicorn could not start on port {port} (exit {exc.code})") from None
        raise RuntimeError("uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
