"""The milter door: Postfix (``smtpd_milters``) or Stalwart (``session.data.milter``) asks mailhook
about every message passing the MTA (docs/milter.md).

``protocol`` is the wire codec, ``session`` the per-connection state machine, ``checks`` the
decisions (inbound score headers, outbound guard and hold queue), ``verdict`` the data between
them, ``server`` the asyncio TCP server; ``mtahook`` and ``http`` answer Stalwart's MTA Hooks (HTTP +
JSON) with the same checks. :func:`start_milter` wires them to :class:`Services`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .checks import HoldAction, MilterChecks
from .server import MilterServer

if TYPE_CHECKING:
    from mailhook.services import Services

__all__ = ["MilterChecks", "MilterServer", "build_checks", "start_milter"]


def build_checks(services: Services, *, hold_action: HoldAction | None = None) -> MilterChecks:
    """The decisions, configured like the pipeline (one outbound guard configuration)."""
    from mailhook.services import make_outbound_guard

    settings = services.settings
    return MilterChecks(
        services.directory,
        services.activity,
        make_outbound_guard(settings),
        settings.guard,
        mode=settings.milter.mode,
        hold_action=hold_action or settings.milter.hold_action,
    )


async def start_milter(services: Services) -> MilterServer:
    """Listen for the MTA's milter connections with the configured mode and limits."""
    server = MilterServer(build_checks(services), services.settings.milter)
    await server.start()
    return server
