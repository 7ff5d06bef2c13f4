"""Batch import of mailboxes from CSV: parse the whole file first, then create one row at a time.

Two layouts, each with an exact header row (lower case, in this order):

* ``hosted``: ``agent_name,password``. ``agent_name`` is the handle, as in the API
  (``agent_name@<agent.domain>``). Hosted mailboxes have no login of their own (mail reaches
  them over LMTP from the MTA), so the ``password`` column is **ignored**: it is never stored or
  logged, and a row that fills it gets a warning saying so. Keeping a secret nothing uses would
  only be a liability; a future hosted IMAP store would set its own (hashed) passwords.
* ``external``: ``email,username,password,imap_host,imap_port,smtp_host,smtp_port``. An empty
  port means the API default (993 and 465).

What makes the whole file unusable is refused before anything is created
(:class:`ValidationFailed`, or :class:`PayloadTooLarge` past :data:`MAX_CSV_BYTES`): no or a wrong
header, no data rows, more than :data:`MAX_ROWS`, broken quoting. Everything else is a per-row
error and never stops the batch: :func:`import_rows` runs each row through the
:class:`~mailhook.store.mailboxes.Mailboxes` service (the same validation as the API, each row
its own transaction) and yields a :class:`RowResult` after each.

Results are safe to put back in a spreadsheet: a cell that could be echoed (handle, address,
hosts, ports) and starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return (a formula to
Excel and LibreOffice, "CSV injection") fails its row without being repeated. Passwords and
logins may start with anything: they are never echoed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from mailhook.errors import MailhookError, PayloadTooLarge, ValidationFailed
from mailhook.logs import get_logger
from mailhook.store.mailboxes import Mailboxes
from mailhook.store.models import Mailbox, User
from mailhook.store.servers import ExternalAccount

__all__ = [
    "EXTERNAL_HEADER",
    "HOSTED_HEADER",
    "MAX_CSV_BYTES",
    "MAX_ROWS",
    "BatchKind",
    "BatchRow",
    "RowResult",
    "import_rows",
    "parse_batch_csv",
]

log = get_logger(__name__)

BatchKind = Literal["hosted", "external"]
MAX_ROWS: Final = 100
MAX_CSV_BYTES: Final = 1024 * 1024
HOSTED_HEADER: Final = ("agent_name", "password")
EXTERNAL_HEADER: Final = ("email", "username", "password", "imap_host", "imap_port", "smtp_host", "smtp_port")
HEADERS: Final[dict[str, tuple[str, ...]]] = {"hosted": HOSTED_HEADER, "external": EXTERNAL_HEADER}
#: Columns that may appear in a result or an error message, so must not look like a formula.
ECHOED: Final = frozenset({"agent_name", "email", "imap_host", "imap_port", "smtp_host", "smtp_port"})
#: Secrets keep their spaces; every other cell is stripped.
UNSTRIPPED: Final = frozenset({"password"})
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
HOSTED_COLUMN_NOTE: Final = (
    "the password column is ignored for hosted mailboxes (they have no login of their own); it was not stored"
)


@dataclass(frozen=True)
class BatchRow:
    """One data row: ``number`` counts data rows from 1 (the header is not counted)."""

    number: int
    kind: BatchKind
    values: dict[str, str] = field(repr=False)  # holds a password: never in a repr or a log
    #: Why the row cannot be imported, found while parsing; None if it can be tried.
    problem: str | None = None


@dataclass(frozen=True)
class RowResult:
    """What happened to one row. ``error`` is the error type, ``detail`` says what is wrong."""

    row: int
    of: int
    status: Literal["created", "error"]
    mailbox_id: int | None = None
    address: str | None = None
    error: str | None = None
    detail: str | None = None
    warnings: tuple[str, ...] = ()


def parse_batch_csv(text: str, kind: BatchKind) -> list[BatchRow]:
    """The rows of a batch file (see the module docstring); raises if the file is unusable."""
    header = HEADERS.get(kind)
    if header is None:
        raise ValidationFailed("kind must be hosted or external")
    if len(text) > MAX_CSV_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_CSV_BYTES:
        raise PayloadTooLarge(f"the CSV must be at most {MAX_CSV_BYTES:,} bytes")
    text = text.removeprefix("\ufeff")  # the byte order mark spreadsheets put first
    # newline="": the csv module handles CRLF and newlines inside quoted cells itself.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[BatchRow] = []
    seen_header = False
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # blank line
            if not seen_header:
                if tuple(cell.strip() for cell in cells) != header:
                    raise ValidationFailed(f"the first row must be exactly the header {','.join(header)}")
                seen_header = True
                continue
            if len(rows) == MAX_ROWS:
                raise ValidationFailed(f"at most {MAX_ROWS} rows per batch; split the file")
            rows.append(_row(len(rows) + 1, kind, header, cells))
    except csv.Error as exc:
        raise ValidationFailed(f"CSV line {reader.line_num}: {exc}") from None
    if not seen_header:
        raise ValidationFailed(f"the CSV is empty: it needs the header {','.join(header)} and rows")
    if not rows:
        raise ValidationFailed("the CSV has no rows after the header")
    return rows


def _row(number: int, kind: BatchKind, header: tuple[str, ...], cells: list[str]) -> BatchRow:
    while len(cells) > len(header) and not cells[-1].strip():
        cells = cells[:-1]  # trailing empty cells some spreadsheets add
    if len(cells) != len(header):
        return BatchRow(number, kind, {}, f"expected {len(header)} columns, found {len(cells)}")
    values = {
        name: cell if name in UNSTRIPPED else cell.strip() for name, cell in zip(header, cells, strict=True)
    }
    for name in header:
        if name in ECHOED and values[name].startswith(FORMULA_START):
            return BatchRow(
                number, kind, {}, f"{name} starts with a character spreadsheets treat as a formula"
            )
    return BatchRow(number, kind, values)


async def import_rows(
    mailboxes: Mailboxes, owner: User, rows: Sequence[BatchRow]
) -> AsyncIterator[RowResult]:
    """Create each row's mailbox for ``owner`` in order, yielding its result right after it.

    A row's failure (any error) is its result; the next row is tried regardless.
    """
    total = len(rows)
    for row in rows:
        warnings: tuple[str, ...] = ()
        try:
            if row.problem is not None:
                raise ValidationFailed(row.problem)
            mailbox, warnings = await _create(mailboxes, owner, row)
        except MailhookError as exc:
            yield RowResult(row.number, total, "error", error=type(exc).__name__, detail=str(exc))
        except Exception as exc:
            # Not a validation result: say nothing about internals, log the type, carry on.
            log.error("batch_row_failed", row=row.number, error=type(exc).__name__)
            yield RowResult(row.number, total, "error", error="InternalError", detail="internal error")
        else:
            yield RowResult(row.number, total, "created", mailbox.id, mailbox.address, warnings=warnings)


async def _create(mailboxes: Mailboxes, owner: User, row: BatchRow) -> tuple[Mailbox, tuple[str, ...]]:
    values = row.values
    if row.kind == "hosted":
        warnings = (HOSTED_COLUMN_NOTE,) if values["password"] else ()
        return await mailboxes.create_hosted(owner, values["agent_name"]), warnings
    account = ExternalAccount(
        address=values["email"],
        imap_host=values["imap_host"],
        imap_port=_port("imap_port", values["imap_port"], 993),
        smtp_host=values["smtp_host"],
        smtp_port=_port("smtp_port", values["smtp_port"], 465),
        login=values["username"],
        password=values["password"],
    )
    return await mailboxes.create_external(owner, account), ()


def _port(name: str, text: str, default: int) -> int:
    if not text:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 5):
        raise ValidationFailed(f"{name} must be a whole number between 1 and 65535")
    return int(text)  # the service checks the range
