"""Outbound rules, credentials family: keys, tokens, passwords and secret-bearing config.

Every rule here is ``high``: a leaked credential cannot be called back, so the reply waits for the
owner. Token formats are the providers' documented prefixes (AWS, GitHub, Stripe, Slack, Google,
Anthropic, OpenAI, GitLab, npm, SendGrid, Hugging Face); free-form secrets (passwords, assignments)
need a label and a value that is not a placeholder.

Seed phrases: shipping the 2048-word BIP-39 list is out of scope, so the rule is a heuristic. It
fires on a run of at least 12 consecutive lowercase 3-8 letter words (the shape of every BIP-39
English word) after a label ("seed phrase", "recovery words", "mnemonic"...), or on an unlabelled
run of 24 such words on one line. English prose rarely strings 12 words without a short one ("a",
"of", "to", "is"), a capital or punctuation, which is what keeps false positives low.
"""

from __future__ import annotations

import re

from .checksums import jwt_valid
from .rule import HIGH, Rule, has_digit_and_letter, is_placeholder


def _password_value(value: str) -> bool:
    return not is_placeholder(value)


def _secret_value(value: str) -> bool:
    return len(value) >= 8 and has_digit_and_letter(value) and not is_placeholder(value)


def _credential_pair(value: str) -> bool:
    """``user:password`` from a URL: the password part must not be a placeholder."""
    password = value.partition(":")[2]
    return bool(password) and not is_placeholder(password)


_SEED_WORD = re.compile(r"[a-z]{3,8}")
_NUMBERING = re.compile(r"\d{1,2}[.):]?")
_SEED_MIN_RUN = 12
# The words must start right after the label ("Seed phrase is: ..."), not somewhere later.
_SEED_MAX_LEAD = 4


def seed_run(value: str) -> bool:
    """True if ``value`` starts (within a few tokens) with 12+ consecutive lowercase 3-8 letter
    words; list numbering ("1.", "2)") between the words is skipped.
    """
    tokens = [t for t in re.split(r"[\s,;]+", value) if t and not _NUMBERING.fullmatch(t)]
    for start in range(min(_SEED_MAX_LEAD + 1, len(tokens))):
        run = 0
        for token in tokens[start : start + _SEED_MIN_RUN]:
            if not _SEED_WORD.fullmatch(token):
                break
            run += 1
        if run >= _SEED_MIN_RUN:
            return True
    return False


_BACKUP_CODE = re.compile(r"\b[a-z0-9]{4,5}[- ]?[a-z0-9]{4,5}\b", re.IGNORECASE)


def backup_codes(value: str) -> bool:
    """At least four code-shaped tokens (e.g. ``1a2b3-4c5d6``, ``8472 1930``) after the label."""
    codes = [m for m in _BACKUP_CODE.findall(value) if any(c.isdigit() for c in m)]
    return len(codes) >= 4


_ENV_LINE = r"[ \t]*(?:export[ \t]+)?[A-Z][A-Z0-9_]+[ \t]*=[ \t]*[^\s][^\n]*"
_ASSIGNED_NAME = (
    r"(?:(?i:(?:[a-z0-9]+[_-]){0,4}(?:api[_-]?key|apikey|secret(?:[_-]?key)?|client[_-]?secret"
    r"|access[_-]?(?:key|token)|auth[_-]?token|refresh[_-]?token|private[_-]?key|signing[_-]?key))"
    r"|[A-Z][A-Z0-9_]*_(?:KEY|TOKEN|SECRET|PASSWORD|PASS|PWD))"
)
_DB_SCHEMES = r"(?:jdbc:)?(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver)"

CREDENTIAL_RULES: tuple[Rule, ...] = (
    Rule(
        "cred.private_key",
        HIGH,
        re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
        hints=("PRIVATE KEY",),
    ),
    Rule("cred.aws_access_key", HIGH, re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), hints=("AKIA", "ASIA")),
    Rule(
        "cred.aws_secret_key",
        HIGH,
        re.compile(
            r"(?i:aws_?secret(?:_access)?_?key)[\"']?[ \t]*[:=][ \t]*[\"']?(?P<value>[A-Za-z0-9/+=]{40})\b"
        ),
    ),
    Rule(
        "cred.github_token",
        HIGH,
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_\w{40,255})"),
        hints=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    Rule("cred.gitlab_token", HIGH, re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), hints=("glpat-",)),
    Rule("cred.npm_token", HIGH, re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), hints=("npm_",)),
    Rule("cred.stripe_key", HIGH, re.compile(r"\b(?:sk|rk)_live_[A-Za-z0-9]{20,}"), hints=("_live_",)),
    Rule("cred.slack_token", HIGH, re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}"), hints=("xox",)),
    Rule(
        "cred.webhook_url",
        HIGH,
        re.compile(
            r"https://(?:hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{20,}"
            r"|(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]{20,})"
        ),
        hints=("https://",),
    ),
    Rule(
        "cred.google_api_key", HIGH, re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"), hints=("AIza",)
    ),
    Rule("cred.anthropic_key", HIGH, re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}"), hints=("sk-ant-",)),
    Rule(
        "cred.openai_key",
        HIGH,
        re.compile(r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}"),
        validate=has_digit_and_letter,
        hints=("sk-",),
    ),
    Rule(
        "cred.sendgrid_key", HIGH, re.compile(r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b"), hints=("SG.",)
    ),
    Rule("cred.huggingface_token", HIGH, re.compile(r"\bhf_[A-Za-z0-9]{34,}\b"), hints=("hf_",)),
    Rule(
        "cred.jwt",
        HIGH,
        re.compile(r"\b(?P<value>ey[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"),
        validate=jwt_valid,
        hints=("ey",),
    ),
    Rule(
        "cred.bearer_token",
        HIGH,
        re.compile(r"\b[Bb]earer[ \t]+(?P<value>[A-Za-z0-9._~+/-]{20,}=*)"),
        validate=has_digit_and_letter,
        hints=("earer",),
    ),
    Rule(
        "cred.connection_string",
        HIGH,
        re.compile(rf"(?i:\b{_DB_SCHEMES})://(?P<value>[^\s:/@]*:[^\s@/]+)@"),
        validate=_credential_pair,
        hints=("://",),
    ),
    Rule(
        "cred.url_credentials",
        HIGH,
        re.compile(
            r"(?i:\b(?:https?|ftps?|sftp|smtps?|imaps?|ldaps?|ssh|git))://(?P<value>[^\s:/@]+:[^\s@/]+)@"
        ),
        validate=_credential_pair,
        hints=("://",),
    ),
    Rule(
        "cred.password",
        HIGH,
        re.compile(
            r"(?i:\b(?:password|passwort|passwd|kennwort|passphrase|pwd|pass ?code|contrase[ñn]a"
            r"|mot de passe)\b)[\"']?[ \t]*(?:is[ \t]*)?[:=]>?[ \t]*[\"']?(?P<value>"
            # "Password: please reset it" is prose; a value has a non-letter in it ("hunter2") or
            # is the last thing on its line.
            r"(?=[^\s\"'&]*[^A-Za-z\s\"'&])[^\s\"'&]{4,128}|[A-Za-z]{4,128}(?=[ \t]*(?:\n|\Z)))"
        ),
        validate=_password_value,
    ),
    Rule(
        "cred.secret_assignment",
        HIGH,
        re.compile(rf"\b{_ASSIGNED_NAME}[\"']?[ \t]*[:=][ \t]*[\"']?(?P<value>[^\s\"'&,;]{{8,}})"),
        validate=_secret_value,
    ),
    Rule("cred.env_block", HIGH, re.compile(rf"(?m)^(?:{_ENV_LINE}\n){{2}}{_ENV_LINE}$"), hints=("=",)),
    Rule(
        "cred.seed_phrase",
        HIGH,
        re.compile(
            r"(?i:\b(?:(?:seed|recovery|backup|secret|wallet)[ \t-]*(?:phrase|words?)|mnemonic|seed)\b)"
            r"(?P<v1>[^\n]{0,300}(?:\n[^\n]{0,300}){0,24})"
            r"|(?P<v2>(?:\b[a-z]{3,8}[ \t]+){23}[a-z]{3,8}\b)"
        ),
        validate=seed_run,
    ),
    Rule(
        "cred.backup_codes",
        HIGH,
        re.compile(r"(?P<value>(?i:\b(?:backup|recovery|2fa|two-factor|mfa)[ \t-]*codes?\b)[\s\S]{0,300})"),
        validate=backup_codes,
    ),
)
"""The credentials family, in the order findings are reported."""
