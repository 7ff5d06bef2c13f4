"""The mailbox's reference documents: the owner's list, the model's pick, and fresh text for the reply.

An owner lists documents (name, description, URL) inline as JSON or in a manifest fetched from a
URL. Before deciding, the model sees :func:`select_prompt` (names and descriptions only) and answers
with a JSON array of names; :func:`parse_selection` keeps at most :data:`MAX_SELECTED` known ones,
and :func:`fetch_selected` fetches them fresh through :mod:`mailhook.net.fetch`, so an edit to a
document is live at the next mail. The list is owner input, but it may come from a manifest anyone
with access to that URL can edit, so it is validated as untrusted: sizes, counts, types, URL
schemes, and every message says which item and field is wrong.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from mailhook.errors import MailhookError, ValidationFailed
from mailhook.logs import get_logger
from mailhook.mail.html_text import html_to_text
from mailhook.net.fetch import fetch_document

__all__ = [
    "MAX_DOCUMENTS",
    "MAX_SELECTED",
    "DocumentRef",
    "fetch_selected",
    "load_manifest",
    "parse_documents",
    "parse_selection",
    "select_prompt",
]

log = get_logger(__name__)

MAX_DOCUMENTS: Final = 50
MAX_SELECTED: Final = 3
MAX_NAME: Final = 200
MAX_DESCRIPTION: Final = 1000
MAX_URL: Final = 2048
MAX_DOCUMENT_CHARS: Final = 20_000
#: The inline JSON itself: 50 full-size entries fit many times over; more is not a document list.
MAX_LIST_CHARS: Final = 256 * 1024
# A model answer is a short array; a longer one is only scanned this far, and only this often.
_MAX_ANSWER_CHARS = 10_000
_MAX_ARRAY_ATTEMPTS = 20

_FIELDS = frozenset({"name", "description", "url"})
# C0/C1 controls (tab and newline are fine in a description and are folded away in the prompt).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Anything that could start a new line in the model's list (Unicode line separators too).
_NAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ANY_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f]")
_TRUNCATED = "\n[DOCUMENT TRUNCATED]"


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """One document the model may ask for."""

    name: str
    description: str
    url: str


def parse_documents(value: str | list[object]) -> list[DocumentRef]:
    """The validated document list from inline JSON text or an already-decoded list.

    Blank text means no documents. Any problem is a :class:`ValidationFailed` naming the item.
    """
    items = _as_list(value)
    if len(items) > MAX_DOCUMENTS:
        raise ValidationFailed(f"documents: at most {MAX_DOCUMENTS} are allowed, got {len(items)}")
    documents = [_document(number, item) for number, item in enumerate(items, start=1)]
    _check_unique(documents)
    return documents


def _as_list(value: object) -> list[object]:
    if isinstance(value, str):
        if not value.strip():
            return []
        if len(value) > MAX_LIST_CHARS:
            raise ValidationFailed(f"documents: the list is longer than {MAX_LIST_CHARS} characters")
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                f"documents: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from exc
        except RecursionError as exc:
            raise ValidationFailed("documents: not valid JSON (nested too deeply)") from exc
    if not isinstance(value, list):
        raise ValidationFailed(
            f"documents: expected a JSON array of {{name, description, url}} objects, got {_kind(value)}"
        )
    return value


def _document(number: int, item: object) -> DocumentRef:
    where = f"document {number}"
    if not isinstance(item, dict):
        raise ValidationFailed(
            f"{where}: expected an object with name, description and url, got {_kind(item)}"
        )
    unknown = sorted(str(key)[:40] for key in item if key not in _FIELDS)
    if unknown:
        raise ValidationFailed(f"{where}: unknown field {unknown[0]!r} (allowed: name, description, url)")
    name = _name(where, item.get("name"))
    where = f"{where} ({json.dumps(name, ensure_ascii=False)})"
    return DocumentRef(
        name=name,
        description=_description(where, item.get("description", "")),
        url=_url(where, item.get("url")),
    )


def _name(where: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f'{where}: "name" must be a non-empty string, got {_kind(value)}')
    name = value.strip()
    if len(name) > MAX_NAME:
        raise ValidationFailed(f'{where}: "name" is longer than {MAX_NAME} characters')
    # Names are shown to the model one per line; a line break in one could forge another entry.
    if _NAME_FORBIDDEN.search(name):
        raise ValidationFailed(f'{where}: "name" must not contain line breaks or control characters')
    return name


def _description(where: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f'{where}: "description" must be a string, got {_kind(value)}')
    if len(value) > MAX_DESCRIPTION:
        raise ValidationFailed(f'{where}: "description" is longer than {MAX_DESCRIPTION} characters')
    if _CONTROL.search(value):
        raise ValidationFailed(f'{where}: "description" must not contain control characters')
    return " ".join(value.split())


def _url(where: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationFailed(f'{where}: "url" must be a non-empty string, got {_kind(value)}')
    if len(value) > MAX_URL:
        raise ValidationFailed(f'{where}: "url" is longer than {MAX_URL} characters')
    if _ANY_CONTROL_OR_SPACE.search(value):
        raise ValidationFailed(f'{where}: "url" must not contain spaces or control characters')
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValidationFailed(f'{where}: "url" is not a valid URL') from exc
    if url.scheme not in ("http", "https"):
        raise ValidationFailed(f'{where}: "url" must start with http:// or https://')
    if not url.host:
        raise ValidationFailed(f'{where}: "url" has no host')
    if url.userinfo:
        raise ValidationFailed(f'{where}: "url" must not contain a user name or password')
    return value


def _check_unique(documents: Sequence[DocumentRef]) -> None:
    # Case-insensitive, because the model's answer is matched case-insensitively.
    first: dict[str, int] = {}
    for number, document in enumerate(documents, start=1):
        key = document.name.casefold()
        if key in first:
            raise ValidationFailed(
                f"document {number}: name {json.dumps(document.name, ensure_ascii=False)} "
                f"is already used by document {first[key]}"
            )
        first[key] = number


def _kind(value: object) -> str:
    """JSON's name for a value's type, for messages an owner can act on."""
    kinds: tuple[tuple[type, str], ...] = (
        (bool, "a boolean"),
        (int, "a number"),
        (float, "a number"),
        (str, "a string"),
        (list, "an array"),
        (dict, "an object"),
    )
    if value is None:
        return "null"
    return next((kind for cls, kind in kinds if isinstance(value, cls)), type(value).__name__)


async def load_manifest(url: str, **fetch_kwargs: Any) -> list[DocumentRef]:
    """The document list published at ``url`` (a JSON array), fetched with :func:`fetch_document`."""
    fetched = await fetch_document(url, **fetch_kwargs)
    try:
        return parse_documents(fetched.text)
    except ValidationFailed as exc:
        raise ValidationFailed(f"document manifest {fetched.final_url}: {exc}") from exc


def select_prompt(docs: Sequence[DocumentRef]) -> str:
    """The list the model picks from: one line per document, names as JSON strings."""
    if not docs:
        return ""
    lines = [
        "Reference documents you can ask for. Answer with a JSON array of at most "
        f"{MAX_SELECTED} names that would help answer this mail, or [] if none would:"
    ]
    for doc in docs:
        name = json.dumps(doc.name, ensure_ascii=False)
        lines.append(f"- {name}: {doc.description}" if doc.description else f"- {name}")
    return "\n".join(lines)


def parse_selection(text: str, docs: Sequence[DocumentRef]) -> list[DocumentRef]:
    """The documents the model named, in its order: known names only, no repeats, at most three."""
    exact = {doc.name: doc for doc in docs}
    folded = {doc.name.casefold(): doc for doc in docs}
    chosen: list[DocumentRef] = []
    for item in _first_json_array(text[:_MAX_ANSWER_CHARS]):
        if not isinstance(item, str):
            continue
        doc = exact.get(item) or folded.get(item.strip().casefold())
        if doc is not None and doc not in chosen:
            chosen.append(doc)
            if len(chosen) == MAX_SELECTED:
                break
    return chosen


def _first_json_array(text: str) -> list[object]:
    """The first JSON array in ``text``: models wrap answers in prose or code fences."""
    decoder = json.JSONDecoder()
    for attempt, match in enumerate(re.finditer(r"\[", text)):
        if attempt == _MAX_ARRAY_ATTEMPTS:
            break
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, list):
            return value
    return []


async def fetch_selected(
    docs: Sequence[DocumentRef], *, max_chars: int = MAX_DOCUMENT_CHARS, **fetch_kwargs: Any
) -> list[tuple[DocumentRef, str]]:
    """Fresh text of each selected document (at most three, concurrently), each capped at ``max_chars``.

    A document that cannot be fetched is left out and logged by name only: its URL may carry a
    token in the query.
    """
    selected = list(docs[:MAX_SELECTED])
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(_fetch_one(doc, max_chars, fetch_kwargs)) for doc in selected]
    return [
        (doc, text) for doc, task in zip(selected, tasks, strict=True) if (text := task.result()) is not None
    ]


async def _fetch_one(doc: DocumentRef, max_chars: int, fetch_kwargs: dict[str, Any]) -> str | None:
    try:
        fetched = await fetch_document(doc.url, **fetch_kwargs)
    except MailhookError as exc:  # refused or unavailable: the reply goes out without it
        log.warning("document_fetch_failed", document=doc.name, error=type(exc).__name__)
        return None
    text = html_to_text(fetched.text) if fetched.content_type == "text/html" else fetched.text
    if len(text) > max_chars:
        return text[:max_chars] + _TRUNCATED
    return text
