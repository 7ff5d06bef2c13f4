"""Discovery itself: the preset, else every network step at once under one deadline, each
protocol answered by the first step in the documented order (see :mod:`mailhook.autoconfig`).

A failing step only logs and answers "nothing found here"; discovery stops as soon as both
answers are settled, and the ``imap.<domain>`` guess backs up anything still missing.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from typing import Final

from mailhook.autoconfig.model import (
    DISCOVERY_TIMEOUT,
    AutoconfigResult,
    DnsLookup,
    Fetcher,
    Found,
    Server,
)
from mailhook.autoconfig.mozilla import autoconfig_step, autoconfig_urls, safe_fetcher
from mailhook.autoconfig.mx import mx_step
from mailhook.autoconfig.presets import PRESETS, from_preset, guess_servers
from mailhook.autoconfig.resolver import DnsPythonLookup
from mailhook.autoconfig.srv import IMAP_SERVICES, SUBMISSION_SERVICES, srv_step
from mailhook.autoconfig.validation import domain_of
from mailhook.errors import MailhookError
from mailhook.logs import get_logger
from mailhook.store.accounts import clean_email

# The package's name, as before it was split into modules, so log lines keep their logger name.
log = get_logger("mailhook.autoconfig")

_ORDER: Final[dict[str, tuple[str, ...]]] = {
    "imap": ("autoconfig", "well-known", "srv-imap", "mx"),
    "smtp": ("autoconfig", "well-known", "srv-smtp", "mx"),
}


async def discover(
    email: str,
    *,
    resolver: DnsLookup | None = None,
    fetch: Fetcher | None = None,
    timeout: float = DISCOVERY_TIMEOUT,  # noqa: ASYNC109 -- one deadline over every step
    rng: random.Random | None = None,
) -> AutoconfigResult:
    """IMAP and SMTP settings for ``email`` (see :mod:`mailhook.autoconfig` for the order).

    :class:`ValidationFailed` for a malformed address or a domain that is not a public DNS
    name. Failing steps only add to the log; the answer always has both servers, at worst the
    ``imap.<domain>`` guess.
    """
    address = clean_email(email)
    domain = domain_of(address)
    preset = PRESETS.get(domain)
    if preset is not None:
        found = from_preset(preset, "preset", address)
        return _result(address, _first({}, "imap", found), _first({}, "smtp", found))
    fetch = fetch or safe_fetcher()
    dns_lookup = resolver or DnsPythonLookup()
    rng = rng or random.Random()  # noqa: S311 -- load spreading (RFC 2782), not security
    autoconfig_url, well_known_url = autoconfig_urls(address, domain)
    steps = {
        "autoconfig": autoconfig_step(fetch, autoconfig_url, address, "autoconfig"),
        "well-known": autoconfig_step(fetch, well_known_url, address, "well-known"),
        "srv-imap": srv_step(dns_lookup, domain, IMAP_SERVICES, "imap", address, rng),
        "srv-smtp": srv_step(dns_lookup, domain, SUBMISSION_SERVICES, "smtp", address, rng),
        "mx": mx_step(dns_lookup, domain, address),
    }
    tasks = {name: asyncio.create_task(_guarded(name, domain, step)) for name, step in steps.items()}
    timed_out = not await _settle(tasks, timeout)
    results = {name: task.result() for name, task in tasks.items() if task.done() and not task.cancelled()}
    fallback = guess_servers(domain, address, "no published settings were found")
    if timed_out:
        fallback.notes.insert(0, f"Discovery stopped after {timeout:g} s; the slowest sources were skipped.")
    result = _result(address, _first(results, "imap", fallback), _first(results, "smtp", fallback))
    log.info(
        "autoconfig_discovered",
        domain=domain,
        imap=result.imap.source,
        smtp=result.smtp.source,
        timed_out=timed_out,
    )
    return result


async def _guarded(name: str, domain: str, step: Awaitable[Found]) -> Found:
    """One step; any failure of it is just "nothing found here": discovery is best effort.

    Deliberate failures (refused, unavailable, invalid) are expected and logged as such;
    anything else (a resolver or codec error on a strange name) is logged as a warning, by type
    only, and does not cost the user the other steps' answers.
    """
    try:
        return await step
    except MailhookError as exc:
        log.info("autoconfig_step_failed", step=name, domain=domain, error=type(exc).__name__)
    except Exception as exc:
        log.warning("autoconfig_step_crashed", step=name, domain=domain, error=type(exc).__name__)
    return Found()


async def _settle(tasks: dict[str, asyncio.Task[Found]], timeout: float) -> bool:  # noqa: ASYNC109
    """Wait until both answers are settled or the deadline passes; cancel what is left.

    An answer is settled once some step has it and every step before that step has finished.
    True if the wait ended before the deadline.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending: set[asyncio.Task[Found]] = set(tasks.values())
    settled = False
    try:
        while pending and not settled:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            _, pending = await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            settled = all(_is_settled(tasks, kind) for kind in _ORDER)
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return settled or not pending


def _is_settled(tasks: dict[str, asyncio.Task[Found]], kind: str) -> bool:
    for name in _ORDER[kind]:
        task = tasks[name]
        if not task.done():
            return False
        if getattr(task.result(), kind) is not None:
            return True
    return True


def _first(results: dict[str, Found], kind: str, fallback: Found) -> tuple[Server, Found]:
    """The server of the first step in :data:`_ORDER` that has one, and that step."""
    for step in [*(results[name] for name in _ORDER[kind] if name in results), fallback]:
        server: Server | None = getattr(step, kind)
        if server is not None:
            return server, step
    raise AssertionError("the fallback always has both servers")


def _result(address: str, imap: tuple[Server, Found], smtp: tuple[Server, Found]) -> AutoconfigResult:
    (imap_server, imap_step), (smtp_server, smtp_step) = imap, smtp
    notes = list(imap_step.notes)
    notes += [note for note in smtp_step.notes if note not in notes]
    provider = imap_step.provider if imap_step.provider == smtp_step.provider else None
    return AutoconfigResult(address, provider, imap_server, smtp_server, tuple(notes))
