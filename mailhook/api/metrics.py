"""``GET /metrics``: Prometheus text exposition (format 0.0.4).

Two kinds of series (docs/operations.md lists them all):

- read from the database at scrape time, so every node reports the shared totals: spool depth
  by status, the age of the oldest waiting job, outgoing messages by state, activity by action;
- counted in this process (``mailhook/observe.py``): model latency, tokens, errors and
  decisions, pipeline runs and their duration, guard findings and holds.

The ``node`` label of ``mailhook_info`` tells which process answered. Only counts, never
addresses or content.
"""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State
from sqlalchemy import func, select

import mailhook
from mailhook.services import Services
from mailhook.store.models import Activity, JobStatus, Reply, SpoolJob, utcnow


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
        oldest = await session.scalar(
            select(func.min(SpoolJob.created_at)).where(SpoolJob.status == JobStatus.QUEUED.value)
        )
    waiting = max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0
    lines = [
        "# HELP mailhook_info Build information.",
        "# TYPE mailhook_info gauge",
        f'mailhook_info{{version="{mailhook.__version__}",node="{_escape(services.spool.node)}"}} 1',
        *_family("mailhook_spool_jobs", "gauge", "Spool jobs by status.", spool, "status"),
        *_family("mailhook_outgoing_messages", "gauge", "Outgoing messages by state.", replies, "state"),
        *_family(
            "mailhook_activity_total", "counter", "Messages accounted for, by action.", actions, "action"
        ),
        "# HELP mailhook_spool_oldest_queued_seconds Age of the oldest job waiting (0 when none).",
        "# TYPE mailhook_spool_oldest_queued_seconds gauge",
        f"mailhook_spool_oldest_queued_seconds {waiting:.3f}",
        *services.metrics.render(),
    ]
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
