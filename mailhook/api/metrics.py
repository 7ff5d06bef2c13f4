"""``GET /metrics``: Prometheus text exposition (format 0.0.4) of spool, delivery and activity.

Counts are read from the database, so every node reports the shared totals; the ``node``
label tells which process answered. Only counts, never addresses or content.
"""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State
from sqlalchemy import func, select

import mailhook
from mailhook.services import Services
from mailhook.store.models import Activity, Reply, SpoolJob


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, kind: str, help_text: str, samples: dict[str, int], label: str) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f'{name}{{{label}="{_escape(key)}"}} {value}' for key, value in sorted(samples.items())]
    return lines


@get("/metrics", opt={"public": True}, media_type="text/plain; version=0.0.4")
async def metrics(state: State) -> Response[str]:
    """Spool depth by status, outgoing messages by state, activity by action."""
    services: Services = state.services
    async with services.sessions() as session:
        spool = dict(
            (await session.execute(select(SpoolJob.status, func.count()).group_by(SpoolJob.status))).all()
        )
        replies = dict((await session.execute(select(Reply.state, func.count()).group_by(Reply.state))).all())
        actions = dict(
            (await session.execute(select(Activity.action, func.count()).group_by(Activity.action))).all()
        )
    lines = [
        "# HELP mailhook_info Build information.",
        "# TYPE mailhook_info gauge",
        f'mailhook_info{{version="{mailhook.__version__}",node="{_escape(services.spool.node)}"}} 1',
        *_family("mailhook_spool_jobs", "gauge", "Spool jobs by status.", spool, "status"),
        *_family("mailhook_outgoing_messages", "gauge", "Outgoing messages by state.", replies, "state"),
        *_family(
            "mailhook_activity_total", "counter", "Messages accounted for, by action.", actions, "action"
        ),
    ]
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
