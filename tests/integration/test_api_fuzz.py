"""Schemathesis against mailhook's own OpenAPI schema, served by a real ``mailhook serve``: never a 5xx.

Every operation in ``/schema/openapi.json`` gets schema-valid (positive) and schema-violating
(negative) requests with the owner's bearer token, every integer path parameter gets the edge
values in ``EDGE_INTEGERS`` (deterministically, so a known overflow is caught on every run), and
then each operation gets a few positive requests without any token. Any 4xx is a fine answer to
garbage; a 5xx, or no answer at all, is a bug. Failures are collected rather than raised one by
one, so a run reports every broken route at once.

Left out: ``DELETE /api/v1/me``: it erases the fixture user, and with it the token the rest of the
run needs (its body is only the password, which ``test_account_api`` covers). Not run: the
link-based stateful tests (too slow for the time budget). ``DELETE /api/v1/mailboxes/{mailbox_id}``
runs last, since it may delete the fixture mailbox that the other operations are aimed at.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.process import MailhookProcess, base_env, cli

OWNER = "owner@example.com"
EXAMPLES = 15  # per operation and generation mode
UNAUTHENTICATED_EXAMPLES = 3
# Each login hashes a password with argon2 (most of a second on a busy machine): fewer of those.
SLOW = {("POST", "/api/v1/auth/login"): 5}
# Erasing the account would end the run; autoconfig and the connection test reach out to the
# network for generated host names (DNS, HTTPS, IMAP/SMTP logins), and tests never touch the
# network (tests/unit/test_autoconfig.py and imap/test_connection_test.py cover them).
EXCLUDED = {
    ("DELETE", "/api/v1/me"),
    ("GET", "/api/v1/email-autoconfig"),
    ("POST", "/api/v1/mailboxes/connection-test"),
}
LAST = {("DELETE", "/api/v1/mailboxes/{mailbox_id}")}
# Ids in URLs: around the PostgreSQL integer and the SQLite/bigint limits, and far past them.
EDGE_INTEGERS = (0, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30)


@dataclass
class Server:
    process: MailhookProcess
    base_url: str
    token: str
    known: dict[str, Any]  # real path parameter values: the fixture mailbox and a persona commit


@dataclass
class Run:
    server: Server
    cases: int = 0
    failures: list[str] = field(default_factory=list)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    env = base_env(
        tmp_path / "var",
        MAILHOOK_LLM_PROVIDER="none",
        MAILHOOK_HTTP_RATE_LIMIT_IP_PER_MINUTE="100000",
        MAILHOOK_HTTP_RATE_LIMIT_USER_PER_MINUTE="100000",
    )
    cli(env, "user", "create", OWNER)
    cli(env, "mailbox", "add", "bot@agents.test", "--owner", OWNER)
    process = MailhookProcess(env, tmp_path / "mailhook.log").start()
    try:
        base_url = f"http://127.0.0.1:{env['MAILHOOK_HTTP_PORT']}"
        with httpx.Client(base_url=base_url, timeout=30) as api:
            login = api.post(
                "/api/v1/auth/login", json={"email": OWNER, "password": env["MAILHOOK_NEW_USER_PASSWORD"]}
            )
            assert login.status_code == 200, login.text
            token = login.json()["token"]
            api.headers["Authorization"] = f"Bearer {token}"
            (mailbox,) = api.get("/api/v1/mailboxes").raise_for_status().json()
            url = f"/api/v1/mailboxes/{mailbox['id']}"
            api.patch(url, json={"persona": "You are Bot."}).raise_for_status()
            (version,) = api.get(f"{url}/persona/history").raise_for_status().json()
        yield Server(process, base_url, token, {"mailbox_id": mailbox["id"], "commit": version["commit"]})
    finally:
        process.stop()


def _key(operation: Any) -> tuple[str, str]:
    return operation.method.upper(), operation.path


def _schema_type(parameter: Any) -> Any:
    return parameter.definition.get("schema", {}).get("type")


def _negatable(operation: Any) -> bool:
    """Whether a request can break the schema: it has a body, a query, or a path parameter that is
    not a plain string (a URL segment cannot be left out, and any string fits a string). Otherwise
    Hypothesis only burns seconds proving the negative strategy ``Unsatisfiable``."""
    return bool(
        len(operation.body)
        or len(operation.query)
        or any(_schema_type(parameter) != "string" for parameter in operation.path_parameters)
    )


def _strategy(operation: Any, mode: GenerationMode, fixed: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Cases for ``operation``; with known path parameters, about half aimed at the real ones."""
    strategy = operation.as_strategy(generation_mode=mode)
    if fixed:
        strategy = st.one_of(strategy, operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    return strategy


def _short(case: Any) -> str:
    text = repr(case)
    return text if len(text) <= 300 else text[:300] + "…"


def _fuzz(
    run: Run, operation: Any, strategy: st.SearchStrategy[Any], examples: int, tag: str, *, token: bool
) -> None:
    """Send up to ``examples`` cases from ``strategy``; record every 5xx or missing answer."""
    server = run.server
    headers = {"Authorization": f"Bearer {server.token}"} if token else {}
    label = f"{operation.method.upper()} {operation.path} [{tag}{'' if token else ', no token'}]"

    @given(case=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # failures are collected, never raised: nothing to replay or shrink
        suppress_health_check=list(HealthCheck),
    )
    def send(case: Any) -> None:
        run.cases += 1
        try:
            response = case.call(base_url=server.base_url, headers=headers, timeout=30)
        except requests.RequestException as exc:
            run.failures.append(f"{label} {_short(case)}: no answer ({type(exc).__name__})")
            return
        if response.status_code >= 500:
            run.failures.append(f"{label} {_short(case)}: {response.status_code} {response.text[:200]}")

    # A negative strategy may still find nothing to violate: Hypothesis then gives up with this.
    with contextlib.suppress(Unsatisfiable):
        send()


def _fuzz_operation(run: Run, operation: Any) -> None:
    known = run.server.known
    fixed = {p.name: known[p.name] for p in operation.path_parameters if p.name in known}
    examples = SLOW.get(_key(operation), EXAMPLES)
    strategy = _strategy(operation, GenerationMode.POSITIVE, fixed)
    _fuzz(run, operation, strategy, examples, "positive", token=True)
    if _negatable(operation):
        strategy = _strategy(operation, GenerationMode.NEGATIVE, fixed)
        _fuzz(run, operation, strategy, examples, "negative", token=True)
    for parameter in operation.path_parameters:
        if _schema_type(parameter) != "integer":
            continue
        for value in EDGE_INTEGERS:
            pinned = {**fixed, parameter.name: value}
            strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=pinned)
            _fuzz(run, operation, strategy, 1, f"{parameter.name}={value}", token=True)
    strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
    _fuzz(run, operation, strategy, UNAUTHENTICATED_EXAMPLES, "positive", token=False)


def test_no_request_gets_a_5xx(server: Server) -> None:
    schema = schemathesis.openapi.from_url(
        f"{server.base_url}/schema/openapi.json", config=schemathesis.Config(), timeout=30
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    keys = {_key(operation) for operation in operations}
    assert keys >= EXCLUDED | LAST, "the schema changed: update EXCLUDED and LAST"
    assert len(keys) >= 20, sorted(keys)
    ordered = sorted((op for op in operations if _key(op) not in EXCLUDED), key=lambda op: _key(op) in LAST)
    run = Run(server)
    assert server.process.process is not None
    for operation in ordered:
        _fuzz_operation(run, operation)
        if server.process.process.poll() is not None:
            run.failures.append(f"mailhook exited during {operation.method.upper()} {operation.path}")
            break
    assert run.cases >= 2 * len(ordered), f"only {run.cases} cases for {len(ordered)} operations"
    log = server.process.log_path.read_text(errors="replace")
    logged = [line for line in log.splitlines() if re.search(r'"level": "(error|critical)"', line)]
    if run.failures:
        pytest.fail(
            f"{len(run.failures)} of {run.cases} fuzzed requests got a 5xx or no answer:\n"
            + "\n".join(run.failures)
            + f"\n\nerrors in {server.process.log_path} (last 20):\n"
            + "\n".join(logged[-20:]),
            pytrace=False,
        )
