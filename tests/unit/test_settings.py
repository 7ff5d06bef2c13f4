"""Settings: defaults, TOML overlay, environment precedence, clear errors, generated secrets."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mailhook.errors import ConfigError
from mailhook.settings import ensure_secrets, env_var_names, load_settings

DOCS = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_documented_defaults() -> None:
    s = load_settings({})
    assert (s.lmtp.host, s.lmtp.port) == ("127.0.0.1", 8024)
    assert (s.smtp.host, s.smtp.port) == ("127.0.0.1", 2525)
    assert (s.http.host, s.http.port) == ("127.0.0.1", 8000)
    assert s.data_dir == Path("var")
    assert s.database_url.startswith("sqlite+aiosqlite:///") and s.database_url.endswith("var/mailhook.db")
    assert s.outbound.mode == "sandbox"
    assert s.security.encryption_key == "" and s.security.jwt_secret == ""


def test_toml_overlay_and_env_precedence(tmp_path: Path) -> None:
    config = tmp_path / "mailhook.toml"
    config.write_text('data_dir = "/srv/mh"\n[lmtp]\nport = 9024\nhost = "0.0.0.0"\n[log]\njson = false\n')
    s = load_settings({"MAILHOOK_CONFIG": str(config), "MAILHOOK_LMTP_PORT": "7024"})
    assert s.lmtp.port == 7024, "environment beats the file"
    assert s.lmtp.host == "0.0.0.0", "file beats the default"
    assert s.data_dir == Path("/srv/mh")
    assert s.log.json is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAILHOOK_LMTP_PORT": "eighty"}, "MAILHOOK_LMTP_PORT"),
        ({"MAILHOOK_LMTP_PORT": "70000"}, "out of range"),
        ({"MAILHOOK_LOG_JSON": "maybe"}, "not a boolean"),
        ({"MAILHOOK_OUTBOUND_MODE": "carrier-pigeon"}, "sandbox"),
        ({"MAILHOOK_SMTP_TLS_CERT": "/x.pem"}, "set together"),
        ({"MAILHOOK_SPOOL_WORKERS": "0"}, "at least 1"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_bad_toml_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "bad.toml"
    broken.write_text("[lmtp\nport = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({"MAILHOOK_CONFIG": str(broken)})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({"MAILHOOK_CONFIG": str(tmp_path / "missing.toml")})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[lmpt]\nport = 1\n")
    with pytest.raises(ConfigError, match="unknown section"):
        load_settings({"MAILHOOK_CONFIG": str(unknown)})


def test_secrets_generated_once_mode_0600(tmp_path: Path) -> None:
    s = load_settings({"MAILHOOK_DATA_DIR": str(tmp_path)})
    first, created = ensure_secrets(s)
    assert sorted(p.name for p in created) == ["encryption.key", "jwt.secret"]
    for path in created:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.security.jwt_secret) >= 48 and first.security.encryption_key
    second, created_again = ensure_secrets(s)
    assert created_again == []
    assert second.security == first.security, "the same keys are read back on the next start"
    other, _ = ensure_secrets(load_settings({"MAILHOOK_DATA_DIR": str(tmp_path / "other")}))
    assert other.security.jwt_secret != first.security.jwt_secret, "no hard-coded fallback"


def test_given_secrets_are_used_not_generated(tmp_path: Path) -> None:
    env = {"MAILHOOK_DATA_DIR": str(tmp_path), "MAILHOOK_SECURITY_JWT_SECRET": "x" * 40}
    s, created = ensure_secrets(load_settings(env))
    assert s.security.jwt_secret == "x" * 40
    assert [p.name for p in created] == ["encryption.key"]


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    missing = [name for name in env_var_names() if f"`{name}`" not in text]
    assert missing == []
