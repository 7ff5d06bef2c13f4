"""The ``mailhook`` command: serve, migrate, user create, mailbox add, check, dead-letter."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mailhook.errors import MailhookError
from mailhook.logs import configure_logging, get_logger, register_secrets
from mailhook.settings import Settings, ensure_secrets, load_settings

if TYPE_CHECKING:
    from mailhook.services import Services

# The services, the store and the app are imported inside the commands that use them: they pull
# in SQLAlchemy, the model clients and PyMuPDF, seconds of start-up that `mailhook --help` and
# a mistyped option should not pay.

T = TypeVar("T")
log = get_logger("mailhook.cli")
#: Seconds ``serve`` waits for open HTTP requests at shutdown before cancelling them.
SHUTDOWN_GRACE_SECONDS = 10


def prepare() -> Settings:
    """Load settings, create missing secrets (and say so), configure logging."""
    settings, created = ensure_secrets(load_settings())
    register_secrets(settings.secret_values())
    configure_logging(settings.log.level, json=settings.log.json)
    for path in created:
        log.warning("generated_secret", path=str(path), note="keep this file; it is mode 0600")
    return settings


def run_with_services(action: Callable[[Services], Awaitable[T]], *, migrate: bool = True) -> T:
    """Build services, optionally migrate, run ``action``, close."""

    from mailhook.services import build_services
    from mailhook.store.migrate import upgrade

    async def main() -> T:
        services = build_services(prepare())
        try:
            if migrate:
                await upgrade(services.engine)
            return await action(services)
        finally:
            await services.close()

    return asyncio.run(main())


def fail(message: str) -> None:
    """Print an error for humans and exit 1."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


class FriendlyGroup(click.Group):
    """Turns a :class:`MailhookError` into one clear line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MailhookError as exc:
            fail(str(exc))


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """mailhook: an AI agent in your mail server's delivery path.

    Configuration comes from MAILHOOK_* environment variables and the TOML file named by
    MAILHOOK_CONFIG (see docs/configuration.md).
    """


@main.command()
@click.option("--no-migrate", is_flag=True, help="Do not apply database migrations at start.")
@click.option(
    "--reload",
    is_flag=True,
    help="Development: restart the server when a Python file of mailhook changes.",
)
@click.option(
    "--reload-dir",
    "reload_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="With --reload: watch this directory instead of mailhook's package (repeatable).",
)
def serve(no_migrate: bool, reload: bool, reload_dirs: tuple[str, ...]) -> None:
    """Run everything in one process: HTTP API/UI, LMTP and SMTP doors, spool workers."""
    import uvicorn

    settings = prepare()
    log.info("http_listening", url=settings.public_url)
    options: dict[str, Any] = {
        "host": settings.http.host,
        "port": settings.http.port,
        "log_config": None,
        "access_log": False,
        # Open activity streams (api/sse.py) never finish on their own; without a bound a stop
        # would wait for every browser tab to go away.
        "timeout_graceful_shutdown": SHUTDOWN_GRACE_SECONDS,
    }
    if reload:
        # uvicorn's reloader runs the app in a child process that it restarts on a change, so
        # the app is named, not passed; the child reads the same environment. The web UI's
        # files are read from disk on each request and need no restart.
        os.environ[_RELOAD_MIGRATE] = "0" if no_migrate else "1"
        uvicorn.run(
            f"{__name__}:{reloading_app.__name__}",
            factory=True,
            reload=True,
            reload_dirs=list(reload_dirs) or [str(Path(__file__).parent)],
            **options,
        )
        return
    from mailhook.app import create_app
    from mailhook.services import build_services

    uvicorn.run(create_app(build_services(settings), migrate=not no_migrate), **options)


_RELOAD_MIGRATE = "MAILHOOK_RELOAD_MIGRATE"


def reloading_app() -> Any:
    """The app for ``serve --reload``, built afresh in each child process the reloader starts."""
    from mailhook.app import create_app
    from mailhook.services import build_services

    return create_app(build_services(prepare()), migrate=os.environ.get(_RELOAD_MIGRATE) != "0")


@main.command()
def migrate() -> None:
    """Apply database migrations up to the newest version."""

    async def noop(_: Services) -> None:
        return None

    run_with_services(noop)
    click.echo("database is up to date")


@main.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Give the user admin rights.")
@click.password_option(envvar="MAILHOOK_NEW_USER_PASSWORD", help="Password (prompted if not given).")
def user_create(email: str, admin: bool, password: str) -> None:
    """Create a user who can own mailboxes."""

    from mailhook.store.accounts import Accounts

    async def create(services: Services) -> str:
        created = await Accounts(services.sessions).create_user(
            email, password, is_admin=admin, free_credits=services.settings.billing.free_credits
        )
        return created.email

    click.echo(f"created user {run_with_services(create)}")


@main.group()
def mailbox() -> None:
    """Manage agent mailboxes."""


@mailbox.command("add")
@click.argument("address")
@click.option("--owner", required=True, help="E-mail of the owning user.")
@click.option(
    "--mode",
    type=click.Choice(["autonomous", "monitored", "gated", "draft"]),
    default="autonomous",
    show_default=True,
    help="Oversight mode.",
)
@click.option("--persona-file", type=click.File("r"), help="File with the persona (system prompt).")
def mailbox_add(address: str, owner: str, mode: str, persona_file: Any) -> None:
    """Add a hosted agent mailbox ADDRESS owned by an existing user."""
    persona = persona_file.read() if persona_file else ""

    from mailhook.store.accounts import Accounts

    async def add(services: Services) -> str:
        created = await Accounts(services.sessions).add_mailbox(owner, address, mode=mode, persona=persona)
        return created.address

    click.echo(f"added mailbox {run_with_services(add)}")


@main.command()
def check() -> None:
    """Validate the configuration, the database and the model endpoint; print what is wrong."""
    from mailhook.checks import run_checks

    problems = asyncio.run(run_checks(prepare()))
    for line in problems:
        click.echo(f"problem: {line}", err=True)
    if problems:
        sys.exit(1)
    click.echo("all checks passed")


@main.command("mcp")
@click.option(
    "--key-env",
    default="MAILHOOK_MCP_KEY",
    show_default=True,
    help="Environment variable holding the mailbox's agent API key (mh_live_... or mh_test_...).",
)
def mcp_stdio(key_env: str) -> None:
    """Serve the agent primitives as MCP tools over stdio (for desktop MCP clients)."""
    import os

    from mailhook.mcp.stdio import serve_stdio

    key = os.environ.get(key_env, "").strip()
    if not key:
        fail(f"set {key_env} to an agent API key")

    async def serve(services: Services) -> None:
        await serve_stdio(services, key)

    run_with_services(serve, migrate=False)


@main.group("dead-letter")
def dead_letter() -> None:
    """Inspect and retry jobs that failed every attempt."""


@dead_letter.command("list")
def dead_letter_list() -> None:
    """List dead-lettered jobs (metadata only)."""

    async def listing(services: Services) -> list[str]:
        jobs = await services.spool.dead_letters()
        return [f"{j.id}\tmailbox={j.mailbox_id}\tattempts={j.attempts}\t{j.last_error}" for j in jobs]

    lines = run_with_services(listing)
    click.echo("\n".join(lines) if lines else "no dead-lettered jobs")


@dead_letter.command("retry")
@click.argument("job_id", type=int)
def dead_letter_retry(job_id: int) -> None:
    """Queue a dead-lettered job again with fresh attempts."""

    async def retry(services: Services) -> bool:
        return await services.spool.requeue(job_id)

    if not run_with_services(retry):
        fail(f"job {job_id} is not dead-lettered")
    click.echo(f"job {job_id} queued again")
