"""Persona history: every persona a mailbox has had, as commits in one git repository per mailbox.

Layout: ``<data_dir>/personas/<mailbox_id>/`` is a git repository holding one file,
``persona.md``. Each change is a commit whose author is the user who made it, dated now. One
repository per mailbox (rather than one shared repository) makes erasure exact and simple:
deleting the folder deletes every version, with no history to rewrite.

git runs as a subprocess with an argument list (never a shell) and a fixed environment: no system
or global configuration is read, hooks and templates are off and signing is disabled, so whatever
is in the server user's ``~/.gitconfig`` cannot change or block what happens here.

The history lives in the data directory of the node that served the change: nodes that share a
database should share the data directory too (see docs/api.md).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mailhook.errors import ConfigError, NotFound, ValidationFailed
from mailhook.store.models import utcnow

PERSONA_FILE = "persona.md"
COMMITTER = ("mailhook", "mailhook@localhost")
DEFAULT_LIMIT = 100
_COMMIT_ID = re.compile(r"^[0-9a-f]{7,40}$")
# Configuration given on every command line: it wins over anything git might still read.
_CONFIG = (
    "-c", "commit.gpgsign=false",
    "-c", "tag.gpgsign=false",
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.autocrlf=false",
    "-c", "core.fsmonitor=false",
    "-c", "init.defaultBranch=main",
    "-c", "gc.auto=0",
)  # fmt: skip


class GitFailed(Exception):
    """A git command exited non-zero (its stderr is in the message; it holds no persona text)."""


@dataclass(frozen=True, slots=True)
class PersonaVersion:
    """One committed persona."""

    commit: str
    author: str
    time: datetime
    chars: int


@functools.cache
def git_binary() -> str:
    """Path of ``git``, or :class:`ConfigError` telling the operator to install it."""
    found = shutil.which("git")
    if found is None:
        raise ConfigError("persona history needs the `git` program: install it (Debian: apt-get install git)")
    return found


def _environment(author_email: str = COMMITTER[1]) -> dict[str, str]:
    """The whole environment git sees: nothing inherited except PATH."""
    stamp = f"@{int(utcnow().timestamp())} +0000"
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.devnull,
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": author_email,
        "GIT_AUTHOR_EMAIL": author_email,
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_NAME": COMMITTER[0],
        "GIT_COMMITTER_EMAIL": COMMITTER[1],
        "GIT_COMMITTER_DATE": stamp,
    }


async def _git(
    repo: Path, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> bytes:
    """Run ``git -C repo args...`` and return stdout; :class:`GitFailed` on a non-zero exit."""
    process = await asyncio.create_subprocess_exec(
        git_binary(),
        "-C",
        str(repo),
        *_CONFIG,
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env or _environment(),
    )
    out, err = await process.communicate(stdin)
    if process.returncode != 0:
        message = err.decode("utf-8", "replace").strip()[:300]
        raise GitFailed(f"git {args[0]} failed ({process.returncode}): {message}")
    return out


async def _has_commits(repo: Path) -> bool:
    """False for no repository, or one whose first commit never happened (a failed record)."""
    if not (repo / ".git").is_dir():
        return False
    try:
        await _git(repo, "rev-parse", "--verify", "--quiet", "HEAD")
    except GitFailed:
        return False
    return True


def _write_atomically(path: Path, text: str) -> None:
    # newline="" keeps the persona byte-exact (no \r\n translation).
    temporary = path.with_suffix(".tmp")
    with temporary.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    temporary.replace(path)


def check_commit_id(commit: str) -> str:
    """A lower-case hex commit id (7-40 digits), or :class:`ValidationFailed`."""
    commit = commit.strip().lower()
    if not _COMMIT_ID.fullmatch(commit):
        raise ValidationFailed("commit must be 7 to 40 hexadecimal digits")
    return commit


class PersonaHistory:
    """Record and read persona versions under ``root`` (``<data_dir>/personas``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, mailbox_id: int) -> Path:
        """The repository of one mailbox."""
        return self.root / str(int(mailbox_id))

    async def record(self, mailbox_id: int, persona: str, author_email: str) -> str:
        """Commit ``persona`` as the mailbox's newest version; returns the commit id."""
        repo = self.folder(mailbox_id)
        if not (repo / ".git").is_dir():
            await asyncio.to_thread(repo.mkdir, parents=True, exist_ok=True)
            await _git(repo, "init", "--quiet", "--template=")
        await asyncio.to_thread(_write_atomically, repo / PERSONA_FILE, persona)
        await _git(repo, "add", "--", PERSONA_FILE)
        # --allow-empty: setting the same text again is still a change someone made.
        message = f"persona: {len(persona)} characters"
        env = _environment(author_email)
        await _git(repo, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", message, env=env)
        return (await _git(repo, "rev-parse", "HEAD")).decode().strip()

    async def history(self, mailbox_id: int, limit: int = DEFAULT_LIMIT) -> list[PersonaVersion]:
        """Versions newest first (at most ``limit``); empty when the persona was never set."""
        repo = self.folder(mailbox_id)
        if not await _has_commits(repo):
            return []
        log = await _git(repo, "log", "--topo-order", f"--max-count={limit}", "--format=%H%x00%ae%x00%at")
        entries = [line.split("\x00") for line in log.decode().splitlines() if line]
        sizes = await self._char_counts(repo, [commit for commit, _, _ in entries])
        return [
            PersonaVersion(commit, author, datetime.fromtimestamp(int(stamp), UTC), chars)
            for (commit, author, stamp), chars in zip(entries, sizes, strict=True)
        ]

    async def _char_counts(self, repo: Path, commits: Sequence[str]) -> list[int]:
        """Characters of ``persona.md`` at each commit, read in one ``git cat-file --batch``."""
        if not commits:
            return []
        request = "".join(f"{commit}:{PERSONA_FILE}\n" for commit in commits).encode()
        blobs = _parse_batch(await self._batch(repo, request))
        return [0 if blob is None else len(blob.decode("utf-8", "replace")) for blob in blobs]

    async def _batch(self, repo: Path, request: bytes) -> bytes:
        return await _git(repo, "cat-file", "--batch", stdin=request)

    async def version(self, mailbox_id: int, commit: str) -> str:
        """The persona text at ``commit``; :class:`NotFound` if this mailbox has no such version."""
        commit = check_commit_id(commit)
        repo = self.folder(mailbox_id)
        if not (repo / ".git").is_dir():
            raise NotFound("no such persona version")
        # "^{commit}" refuses a blob or tree id that happens to share the prefix.
        request = f"{commit}^{{commit}}:{PERSONA_FILE}\n".encode()
        blob = _parse_batch(await self._batch(repo, request))[0]
        if blob is None:
            raise NotFound("no such persona version")
        return blob.decode("utf-8", "replace")

    async def erase(self, mailbox_id: int) -> None:
        """Delete every version of one mailbox's persona (the folder goes, history and all)."""
        await asyncio.to_thread(shutil.rmtree, self.folder(mailbox_id), ignore_errors=True)

    async def erase_mailboxes(self, mailbox_ids: Iterable[int]) -> None:
        """Delete the persona history of several mailboxes (a user's erasure)."""
        for mailbox_id in mailbox_ids:
            await self.erase(mailbox_id)


def _parse_batch(output: bytes) -> list[bytes | None]:
    """One entry per request line of ``git cat-file --batch``: the blob, or None.

    Each answer is ``<oid> <type> <size>\\n<content>\\n``, or one line ``<name> missing`` /
    ``<name> ambiguous``; an object that is not a blob is None too.
    """
    blobs: list[bytes | None] = []
    position = 0
    while position < len(output):
        end = output.index(b"\n", position)
        header = output[position:end].split()
        position = end + 1
        if len(header) != 3:
            blobs.append(None)
            continue
        size = int(header[2])
        blobs.append(output[position : position + size] if header[1] == b"blob" else None)
        position += size + 1
    return blobs
