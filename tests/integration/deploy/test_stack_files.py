"""The compose stack's files, checked with the tools that can run here (no Docker engine).

- docker/postfix/entrypoint.sh builds a configuration from postfix/*.fragment and
  docker/postfix/*.stack; Debian's Postfix 3.7 (``postconf``) must know every setting, and the
  transport must route the agent domain to mailhook (several nodes in order) and mailbox
  domains to Dovecot.
- docker-compose.yml: every Dockerfile and every file a Dockerfile copies exists, every
  ``${VARIABLE}`` is in .env.example, every ``MAILHOOK_*`` name is a real setting, and the
  two mailhook nodes share one database and have distinct spool node names.
- ``docker-compose config`` (Debian's docker-compose 1.29, which needs no engine) validates the
  file against the Compose schema and resolves it with the example env files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailhook.settings import env_var_names

REPO = Path(__file__).resolve().parents[3]
ENTRYPOINT = REPO / "docker" / "postfix" / "entrypoint.sh"
FRAGMENTS = [
    REPO / "postfix" / "main.cf.fragment",
    REPO / "postfix" / "master.cf.fragment",
    REPO / "docker" / "postfix" / "main.cf.stack",
    REPO / "docker" / "postfix" / "master.cf.stack",
]


@pytest.fixture
def postfix_config(tmp_path: Path) -> Path:
    """Run the entrypoint in dry-run mode against a copy of Debian's stock configuration."""
    postconf = shutil.which("postconf") or "/usr/sbin/postconf"
    if not Path(postconf).exists() or not Path("/etc/postfix/master.cf").exists():
        pytest.skip("Postfix is not installed")
    conf, fragments = tmp_path / "etc", tmp_path / "fragments"
    conf.mkdir()
    fragments.mkdir()
    shutil.copy("/etc/postfix/master.cf", conf / "master.cf")
    (conf / "main.cf").write_text("")
    for fragment in FRAGMENTS:  # what docker/postfix/Dockerfile copies to one directory
        shutil.copy(fragment, fragments / fragment.name)
    env = {
        **os.environ,
        "PATH": f"{Path(postconf).parent}:{os.environ.get('PATH', '')}",
        "POSTFIX_CONFIG_DIR": str(conf),
        "FRAGMENTS_DIR": str(fragments),
        "POSTFIX_DRY_RUN": "1",
        "MAIL_HOSTNAME": "mail.example.com",
        "AGENT_DOMAIN": "agents.example.com",
        "MAILBOX_DOMAINS": "example.com example.net",
        "LMTP_NEXTHOPS": "[mailhook]:8024 [mailhook-2]:8024",
    }
    subprocess.run(["sh", str(ENTRYPOINT)], env=env, check=True, capture_output=True, timeout=60)
    return conf


def postconf(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["postconf", "-c", str(conf), *args], check=True, capture_output=True, text=True, timeout=30
    )


def test_entrypoint_builds_a_configuration_postfix_accepts(postfix_config: Path) -> None:
    result = postconf(postfix_config, "-n")
    assert "warning" not in result.stderr, f"unknown or misspelt settings:\n{result.stderr}"
    settings = dict(line.split(" = ", 1) for line in result.stdout.splitlines() if " = " in line)
    assert settings["myhostname"] == "mail.example.com"
    assert settings["relay_domains"].split() == ["agents.example.com", "example.com", "example.net"]
    assert settings["lmtp_destination_recipient_limit"] == "1", "from postfix/main.cf.fragment"
    assert settings["message_size_limit"] == "26214400", "same as mailhook's lmtp.max_message_bytes"
    assert settings["smtpd_sasl_type"] == "dovecot"
    assert settings["smtpd_tls_chain_files"].startswith("/etc/letsencrypt/live/mail.example.com/")

    transport = (postfix_config / "mailhook_transport").read_text().splitlines()
    assert transport == [
        # Only the first next-hop carries "inet:" (postfix/README.md).
        "agents.example.com lmtp:inet:[mailhook]:8024 [mailhook-2]:8024",
        "example.com lmtp:inet:[dovecot]:24",
        "example.net lmtp:inet:[dovecot]:24",
    ]
    checked = subprocess.run(
        [
            "postmap",
            "-c",
            str(postfix_config),
            "-q",
            "agents.example.com",
            f"texthash:{postfix_config}/mailhook_transport",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.stdout.strip() == "lmtp:inet:[mailhook]:8024 [mailhook-2]:8024"


def test_entrypoint_sets_up_submission_with_sasl(postfix_config: Path) -> None:
    services = postconf(postfix_config, "-M").stdout
    assert re.search(r"^lmtp\s+unix\s+-\s+-\s+n\s+-\s+20\s+lmtp", services, re.MULTILINE), (
        "master.cf.fragment"
    )
    assert re.search(r"^submission\s+inet\s+n\s+-\s+n\s+-\s+-\s+smtpd", services, re.MULTILINE)
    params = postconf(postfix_config, "-P").stdout
    assert "submission/inet/smtpd_sasl_auth_enable = yes" in params
    assert "submission/inet/smtpd_tls_security_level = encrypt" in params
    assert "submission/inet/smtpd_relay_restrictions = permit_sasl_authenticated,reject" in params


# --- docker-compose.yml ----------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def copied_sources(dockerfile: Path) -> list[str]:
    """Source paths of COPY instructions without --from (relative to the build context)."""
    sources = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def test_every_dockerfile_and_copied_file_exists() -> None:
    services = compose()["services"]
    assert {"postfix", "dovecot", "mailhook", "postgres", "migrate"} <= set(services)
    for name, service in services.items():
        build = service.get("build")
        if not build:
            continue
        context = REPO / build["context"]
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        for source in copied_sources(dockerfile):
            assert (context / source).exists(), f"{name}: {dockerfile.name} copies missing {source}"


def test_every_variable_is_documented_in_env_examples() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    example = (REPO / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, re.MULTILINE))
    assert used <= defined, f"not in .env.example: {sorted(used - defined)}"

    known = set(env_var_names())
    mailhook_env = (REPO / "docker" / "mailhook.env.example").read_text()
    names = set(re.findall(r"^(MAILHOOK_[A-Z0-9_]+)=", mailhook_env, re.MULTILINE))
    for service in compose()["services"].values():
        names |= {k for k in (service.get("environment") or {}) if k.startswith("MAILHOOK_")}
    assert names <= known, f"not mailhook settings: {sorted(names - known)}"


def test_mailhook_nodes_share_the_database_and_keys_but_not_node_names() -> None:
    services = compose()["services"]
    first, second = services["mailhook"], services["mailhook-2"]
    assert first["environment"]["MAILHOOK_DATABASE_URL"] == second["environment"]["MAILHOOK_DATABASE_URL"]
    assert (
        first["environment"]["MAILHOOK_SPOOL_NODE_NAME"] != second["environment"]["MAILHOOK_SPOOL_NODE_NAME"]
    )
    assert first["env_file"] == second["env_file"], "the same encryption key and JWT secret"
    assert "--no-migrate" in first["command"] and services["migrate"]["command"] == ["mailhook", "migrate"]
    assert second["profiles"] == ["scale"]


@pytest.fixture
def compose_project(tmp_path: Path) -> Path:
    """A copy of the stack as an operator fills it in: .env and mailhook.env from the examples.

    Debian's docker-compose (1.29) validates a file against the Compose schema and resolves
    interpolation, ``extends``-style anchors, env files and profiles without a Docker engine.
    It predates the Compose Specification's top-level ``name`` (Compose v2 reads it), so the
    copy leaves that one line out; everything else is validated as shipped.
    """
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (scripts/system-deps.sh installs it)")
    project = tmp_path / "stack"
    project.mkdir()
    text = (REPO / "docker-compose.yml").read_text()
    assert re.search(r"^name: mailhook$", text, re.MULTILINE), "the project name line moved"
    (project / "docker-compose.yml").write_text(re.sub(r"^name: mailhook\n", "", text, flags=re.M))
    shutil.copy(REPO / ".env.example", project / ".env")
    shutil.copy(REPO / "docker" / "mailhook.env.example", project / "mailhook.env")
    return project


def compose_config(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker-compose", "--project-directory", str(project), *args, "config"],
        cwd=project,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_docker_compose_validates_the_stack(compose_project: Path) -> None:
    result = compose_config(compose_project, "--profile", "scale")
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    services = resolved["services"]
    assert {"postfix", "dovecot", "mailhook", "mailhook-2", "migrate", "postgres"} <= set(services)
    nodes = [services["mailhook"], services["mailhook-2"]]
    urls = {node["environment"]["MAILHOOK_DATABASE_URL"] for node in nodes}
    assert len(urls) == 1 and "@postgres/" in urls.pop()
    # Each node publishes only its HTTP port, and only on loopback (behind a reverse proxy);
    # LMTP stays on the stack's own network.
    published = [port for node in nodes for port in node.get("ports", [])]
    assert published == ["127.0.0.1:8000:8000/tcp", "127.0.0.1:8001:8000/tcp"]


def test_docker_compose_refuses_a_stack_without_its_secrets(compose_project: Path) -> None:
    env = compose_project / ".env"
    env.write_text(re.sub(r"^POSTGRES_PASSWORD=.*\n", "", env.read_text(), flags=re.M))
    result = compose_config(compose_project)
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr
