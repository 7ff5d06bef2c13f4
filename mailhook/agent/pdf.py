"""Text from PDF attachments and documents, bounded in time and memory, for the model's context.

PDFs arrive in untrusted mail, so :func:`extract_pdf_text` treats every file as hostile: the size
is checked before MuPDF sees a byte, pages are read one at a time and reading stops as soon as the
character budget, the page budget or the deadline is spent. A PDF that cannot be read (encrypted
with a user password, damaged beyond repair, not a PDF at all) yields ``None`` and one log line
carrying only the file name; a scanned PDF with no text layer yields empty text.

MuPDF is not thread-safe, so every use of it here holds one module-wide lock. The async variant runs
the extraction in a worker thread under :func:`asyncio.wait_for`; a Python thread cannot be
killed, so the page loop also watches a monotonic deadline and a cancel flag and gives up itself.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import pymupdf

from mailhook.logs import get_logger
from mailhook.mail.parse import Attachment

__all__ = [
    "PdfText",
    "attachments_as_text",
    "attachments_as_text_async",
    "extract_pdf_text",
    "extract_pdf_text_async",
    "is_pdf",
]

log = get_logger(__name__)

#: MuPDF keeps global state (error stack, warning store) that concurrent callers would corrupt.
_MUPDF_LOCK = threading.Lock()
# MuPDF prints every repair note of a damaged file to stderr; those belong in our logs, not there.
pymupdf.TOOLS.mupdf_display_errors(False)  # type: ignore[no-untyped-call]
pymupdf.TOOLS.mupdf_display_warnings(False)  # type: ignore[no-untyped-call]

#: How long past its deadline the async variant waits for the page loop to hand back partial text.
_GRACE_SECONDS = 1.0

_UNREADABLE_NOTE = "[This PDF could not be read: it is password-protected or damaged.]"
_NO_TEXT_NOTE = "[This PDF has no text layer: it may be a scan or contain only images.]"


@dataclass(frozen=True, slots=True)
class PdfText:
    """Text of one PDF. ``pages`` counts the pages the text covers; the text stays out of ``repr``."""

    name: str
    text: str = field(repr=False)
    pages: int
    truncated: bool


@dataclass(slots=True)
class _Budget:
    """What one extraction may still spend: characters, pages and wall-clock time."""

    chars: int
    pages: int
    deadline: float
    cancel: threading.Event

    def exhausted(self) -> bool:
        return self.cancel.is_set() or time.monotonic() >= self.deadline


def truncation_notice(pages: int) -> str:
    """The line appended to text that was cut short."""
    return f"[PDF TRUNCATED — showing first ~{pages} pages]"


def is_pdf(attachment: Attachment) -> bool:
    """True for attachments declared or named as PDF (senders get the type wrong often enough)."""
    return attachment.content_type.lower() == "application/pdf" or attachment.filename.lower().endswith(
        ".pdf"
    )


def extract_pdf_text(
    name: str,
    data: bytes,
    *,
    max_chars: int = 80_000,
    max_pages: int = 200,
    timeout_seconds: float = 10.0,
    max_bytes: int = 25 * 1024 * 1024,
) -> PdfText | None:
    """Text of the PDF ``data``, or None when it cannot be read. Blocks: see the async variant."""
    return _extract(name, data, max_chars, max_pages, timeout_seconds, max_bytes, threading.Event())


async def extract_pdf_text_async(
    name: str,
    data: bytes,
    *,
    max_chars: int = 80_000,
    max_pages: int = 200,
    timeout_seconds: float = 10.0,
    max_bytes: int = 25 * 1024 * 1024,
) -> PdfText | None:
    """:func:`extract_pdf_text` in a worker thread; None if it overruns ``timeout_seconds``."""
    cancel = threading.Event()
    work = asyncio.to_thread(_extract, name, data, max_chars, max_pages, timeout_seconds, max_bytes, cancel)
    try:
        # The page loop stops itself at the deadline and returns partial text, worth more than
        # nothing; wait_for is there for a single page that hangs inside MuPDF.
        return await asyncio.wait_for(work, timeout_seconds + _GRACE_SECONDS)
    except TimeoutError:
        log.warning("pdf_unreadable", file=name, reason="timeout")
        return None
    finally:
        # The thread cannot be killed; after a timeout or a cancellation from outside this makes
        # it stop at the next page. Harmless once it has finished.
        cancel.set()


def _extract(
    name: str,
    data: bytes,
    max_chars: int,
    max_pages: int,
    timeout_seconds: float,
    max_bytes: int,
    cancel: threading.Event,
) -> PdfText | None:
    if not data:
        log.warning("pdf_unreadable", file=name, reason="empty")
        return None
    if len(data) > max_bytes:
        log.warning("pdf_unreadable", file=name, reason="too_large", size=len(data))
        return None
    budget = _Budget(max_chars, max_pages, time.monotonic() + timeout_seconds, cancel)
    # Waiting for another extraction counts against this one's deadline too.
    if not _MUPDF_LOCK.acquire(timeout=max(timeout_seconds, 0.0)):
        log.warning("pdf_unreadable", file=name, reason="busy")
        return None
    try:
        return _extract_locked(name, data, budget)
    finally:
        # The warning store grows without bound otherwise.
        pymupdf.TOOLS.reset_mupdf_warnings()  # type: ignore[no-untyped-call]
        _MUPDF_LOCK.release()


def _extract_locked(name: str, data: bytes, budget: _Budget) -> PdfText | None:
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")  # type: ignore[no-untyped-call]
    except Exception as exc:  # MuPDF raises FileDataError, RuntimeError, ValueError ... on junk
        log.warning("pdf_unreadable", file=name, reason="damaged", error=type(exc).__name__)
        return None
    with doc:
        if doc.needs_pass:
            log.warning("pdf_unreadable", file=name, reason="encrypted")
            return None
        if doc.page_count < 1:
            log.warning("pdf_unreadable", file=name, reason="no_pages")
            return None
        try:
            return _read_pages(name, doc, budget)
        except Exception as exc:  # a page that MuPDF cannot even repair
            log.warning("pdf_unreadable", file=name, reason="damaged", error=type(exc).__name__)
            return None


def _read_pages(name: str, doc: pymupdf.Document, budget: _Budget) -> PdfText:
    """Page texts until a budget runs out; the page that crosses the character budget is cut."""
    parts: list[str] = []
    used = 0
    total = int(doc.page_count)
    for number in range(min(total, budget.pages)):
        if budget.exhausted():
            break
        page_text = str(doc[number].get_text("text")).strip()  # type: ignore[no-untyped-call]
        room = budget.chars - used
        if page_text and room <= 0:
            return _finish(name, parts, len(parts), truncated=True)
        if len(page_text) > room:
            parts.append(page_text[:room])
            return _finish(name, parts, len(parts), truncated=True)
        parts.append(page_text)
        used += len(page_text) + 2  # the blank line that joins pages
    read = len(parts)
    return _finish(name, parts, read, truncated=read < total)


def _finish(name: str, parts: list[str], pages: int, *, truncated: bool) -> PdfText:
    text = "\n\n".join(part for part in parts if part)
    if truncated:
        text = f"{text}\n\n{truncation_notice(pages)}" if text else truncation_notice(pages)
    return PdfText(name=name, text=text, pages=pages, truncated=truncated)


def attachments_as_text(attachments: Iterable[Attachment], *, max_chars: int = 80_000) -> str:
    """PDF attachments as ``--- Attachment: name ---`` blocks sharing one character budget.

    Blocking: call it from a worker thread, or use :func:`attachments_as_text_async`.
    """
    blocks: list[str] = []
    for attachment in attachments:
        room = max_chars - sum(len(block) for block in blocks)
        if room <= 0:
            break
        if is_pdf(attachment):
            name = _display_name(attachment)
            blocks.append(_block(name, extract_pdf_text(name, attachment.data, max_chars=room)))
    return "\n\n".join(blocks)


async def attachments_as_text_async(attachments: Iterable[Attachment], *, max_chars: int = 80_000) -> str:
    """:func:`attachments_as_text` without blocking the event loop."""
    blocks: list[str] = []
    for attachment in attachments:
        room = max_chars - sum(len(block) for block in blocks)
        if room <= 0:
            break
        if is_pdf(attachment):
            name = _display_name(attachment)
            blocks.append(_block(name, await extract_pdf_text_async(name, attachment.data, max_chars=room)))
    return "\n\n".join(blocks)


def _display_name(attachment: Attachment) -> str:
    # The name comes from hostile mail: one line only, so it cannot fake a block of its own.
    name = " ".join(attachment.filename.split())
    return name or "attachment.pdf"


def _block(name: str, pdf: PdfText | None) -> str:
    """One attachment block; unreadable or textless files still show, so the model can say so."""
    if pdf is None:
        body = _UNREADABLE_NOTE
    elif not pdf.text:
        body = _NO_TEXT_NOTE
    else:
        body = pdf.text
    return f"--- Attachment: {name} ---\n{body}"
