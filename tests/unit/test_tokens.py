"""Offline cl100k_base token counting: known counts, the persona limit, and no network ever."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mailhook.agent.tokens import PERSONA_TOKEN_LIMIT, check_persona, count_tokens, encoding
from mailhook.errors import ValidationFailed

ROOT = Path(__file__).parents[2]

# Counts and ids published for cl100k_base (tiktoken README, OpenAI cookbook "How to count tokens
# with tiktoken"), and a few non-ASCII strings.
KNOWN = [
    ("", 0),
    ("hello world", 2),
    ("tiktoken is great!", 6),
    ("Hello, world!", 4),
    ("2 + 2 = 4", 7),
    ("antidisestablishmentarianism", 6),
    ("お誕生日おめでとう", 9),
    ("Здравствуйте, мир", 9),
    ("😀👍🏽", 8),
]


@pytest.mark.parametrize(("text", "count"), KNOWN)
def test_known_counts(text: str, count: int) -> None:
    assert count_tokens(text) == count


def test_known_token_ids() -> None:
    ordinary = encoding().encode_ordinary
    assert ordinary("hello world") == [15339, 1917]
    assert ordinary("antidisestablishmentarianism") == [519, 85342, 34500, 479, 8997, 2191]
    assert ordinary("お誕生日おめでとう") == [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699]
    assert encoding().decode(ordinary("Grüße aus Köln — café")) == "Grüße aus Köln — café"


def test_special_token_text_is_counted_not_refused() -> None:
    assert count_tokens("<|endoftext|>") == 7


def test_persona_within_limit_returns_its_count() -> None:
    persona = "hello" + " world" * (PERSONA_TOKEN_LIMIT - 1)  # " world" is one token
    assert count_tokens(persona) == PERSONA_TOKEN_LIMIT
    assert check_persona(persona) == PERSONA_TOKEN_LIMIT


def test_persona_over_limit_is_refused_with_its_count() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_persona("hello" + " world" * PERSONA_TOKEN_LIMIT)
    assert str(caught.value) == "persona is 2,001 tokens; the limit is 2,000 (cl100k_base)"


# Run in a fresh interpreter so nothing is cached: every way out of the machine raises.
NO_NETWORK_PRELUDE = textwrap.dedent(
    """
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network access attempted: " + repr(args[:2]))

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    """
)

COUNT_OFFLINE = """
import json
from mailhook.agent.tokens import count_tokens
print(json.dumps([count_tokens("hello world"), count_tokens("tiktoken is great!")]))
"""

TIKTOKEN_DOWNLOAD = """
import tiktoken
tiktoken.get_encoding("cl100k_base")
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_offline(code: str, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    proxy = f"http://127.0.0.1:{_closed_port()}"
    env = {
        **os.environ,
        "TIKTOKEN_CACHE_DIR": str(cache_dir),
        "DATA_GYM_CACHE_DIR": str(cache_dir),
        "HTTP_PROXY": proxy,
        "HTTPS_PROXY": proxy,
        "http_proxy": proxy,
        "https_proxy": proxy,
        "NO_PROXY": "",
    }
    return subprocess.run(
        [sys.executable, "-c", NO_NETWORK_PRELUDE + code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_counting_works_with_the_network_unreachable(tmp_path: Path) -> None:
    result = _run_offline(COUNT_OFFLINE, tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [2, 6]
    assert list(tmp_path.iterdir()) == [], "nothing was fetched into tiktoken's cache"


def test_the_offline_guard_does_block_tiktokens_download(tmp_path: Path) -> None:
    # The control for the test above: plain tiktoken would download, and the prelude stops it.
    result = _run_offline(TIKTOKEN_DOWNLOAD, tmp_path)
    assert result.returncode != 0
    assert "network access attempted" in result.stderr
