"""Stalwart's MTA Hooks (HTTP + JSON) as a second transport for the milter door's decisions.

Stalwart posts a JSON description of the SMTP transaction (``context``, ``envelope``,
``message`` with ``headers`` as ``[name, value]`` pairs and ``contents`` as the body) and applies
the JSON it gets back: an ``action`` (``accept``, ``reject``, ``quarantine``) and a list of
``modifications`` (``addHeader``, ``deleteHeader`` ...). Stalwart's documentation describes both
(docs/api/mta-hooks); its code turns the modifications into the same ones a milter requests, so
``deleteHeader`` carries the milter's per-name index from 1. Not run against Stalwart here
(stalwart/README.md).

Only the ``DATA`` stage is checked; any other stage is answered ``accept`` with no changes.
No I/O here: :func:`collected_from_request` and :func:`hook_response` are pure.
"""

from __future__ import annotations

from typing import Any

from .verdict import Collected, Verdict

MAX_HEADERS = 1000
MAX_RECIPIENTS = 1000


class HookRequestError(ValueError):
    """The request is not an MTA Hooks request we can read (answered 400; no content echoed)."""


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise HookRequestError(f"{where} is not a string")
    return value


def _address(item: Any, where: str) -> str:
    if not isinstance(item, dict):
        raise HookRequestError(f"{where} is not an object")
    return _text(item.get("address", ""), f"{where}.address").strip().strip("<>")[:320]


def stage_of(payload: Any) -> str:
    """``context.stage`` upper-cased (``DATA``, ``RCPT`` ...)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("context"), dict):
        raise HookRequestError("no context object")
    return _text(payload["context"].get("stage", ""), "context.stage").upper()


def collected_from_request(payload: dict[str, Any], max_message_bytes: int) -> Collected:
    """The message as the milter session would have collected it, with the same cap."""
    envelope = payload.get("envelope")
    message = payload.get("message")
    if not isinstance(envelope, dict) or not isinstance(message, dict):
        raise HookRequestError("envelope or message missing")
    recipients = envelope.get("to") or []
    headers = message.get("headers") or []
    if not isinstance(recipients, list) or not isinstance(headers, list):
        raise HookRequestError("envelope.to and message.headers must be lists")
    queue = payload["context"].get("queue")
    collected = Collected(
        sender=_address(envelope.get("from") or {}, "envelope.from"),
        recipients=[_address(item, "envelope.to[]") for item in recipients[:MAX_RECIPIENTS]],
        queue_id=str(queue.get("id", ""))[:64] if isinstance(queue, dict) else "",
    )
    for pair in headers[:MAX_HEADERS]:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise HookRequestError("a header is not a [name, value] pair")
        name, value = (_text(part, "message.headers[]").encode("utf-8", "replace") for part in pair)
        collected.size += len(name) + len(value) + 4
        if collected.size <= max_message_bytes:
            collected.headers.append((name, value.lstrip(b" ")))
    body = _text(message.get("contents", ""), "message.contents").encode("utf-8", "replace")
    collected.size += len(body)
    room = max(0, max_message_bytes - (collected.size - len(body)))
    collected.body += body[:room]
    collected.truncated = collected.size > max_message_bytes or len(headers) > MAX_HEADERS
    return collected


def hook_response(verdict: Verdict) -> dict[str, Any]:
    """The JSON answer: deletions of forged control headers, our headers, the action.

    A hold is always a refusal here: Stalwart turns a hook's ``quarantine`` into an
    ``X-Quarantine`` header and delivers the message (its hooks/message.rs).
    """
    if verdict.reject is not None or verdict.quarantine is not None:
        reason = verdict.reject or verdict.quarantine or ""
        return {
            "action": "reject",
            "response": {"status": 550, "enhancedStatus": "5.7.1", "message": reason, "disconnect": False},
            "modifications": [],
        }
    modifications: list[dict[str, Any]] = [
        {"type": "deleteHeader", "index": index, "name": name.decode("utf-8", "replace")}
        for name, index in verdict.delete
    ]
    modifications += [{"type": "addHeader", "name": name, "value": value} for name, value in verdict.add]
    if verdict.final == "tempfail":
        return tempfail_response()
    return {"action": "accept", "modifications": modifications}


def accept_response() -> dict[str, Any]:
    """Let the message pass unchanged (other stages, or ``on_error = continue``)."""
    return {"action": "accept", "modifications": []}


def tempfail_response() -> dict[str, Any]:
    """``on_error = tempfail``: the SMTP client is told to retry (RFC 5321 451)."""
    return {
        "action": "reject",
        "response": {
            "status": 451,
            "enhancedStatus": "4.3.0",
            "message": "Try again later",
            "disconnect": False,
        },
        "modifications": [],
    }
