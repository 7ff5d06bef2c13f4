"""Built-in settings: large providers by the address's domain, providers recognised by their MX
hosts (custom domains they host), and the low-confidence ``imap.<domain>``/``smtp.<domain>`` guess.

A preset answers with no network at all; the notes say what the provider needs before a
password works (an app password, IMAP switched on, a bridge).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from mailhook.autoconfig.model import Found, Security, Server, Source

Endpoint = tuple[str, int, Security]


@dataclass(frozen=True, slots=True)
class Preset:
    """A provider's published IMAP and SMTP submission settings."""

    name: str
    imap: Endpoint
    smtp: Endpoint
    notes: tuple[str, ...] = ()


_GOOGLE_NOTE = (
    "Google accepts only an app password here: turn on 2-Step Verification, then create one at "
    "myaccount.google.com/apppasswords. The account password is refused."
)
_NEEDS_APP_LOGIN = "{} needs an app password ({}); the account password is refused."
_GMAIL = Preset("Gmail", ("imap.gmail.com", 993, "ssl"), ("smtp.gmail.com", 465, "ssl"), (_GOOGLE_NOTE,))
_WORKSPACE = replace(_GMAIL, name="Google Workspace")
_OUTLOOK = Preset(
    "Outlook.com",
    ("outlook.office365.com", 993, "ssl"),
    ("smtp-mail.outlook.com", 587, "starttls"),
    (
        "Microsoft has retired password (basic) sign-in for IMAP and SMTP on many accounts: if an "
        "app password is refused, the account needs OAuth2 sign-in.",
    ),
)
_OFFICE365 = Preset(
    "Microsoft 365",
    ("outlook.office365.com", 993, "ssl"),
    ("smtp.office365.com", 587, "starttls"),
    (
        "Microsoft 365 tenants often have IMAP and authenticated SMTP turned off, and may accept "
        "only OAuth2 sign-in: ask the tenant administrator to allow them for this mailbox.",
    ),
)
_YAHOO = Preset(
    "Yahoo Mail",
    ("imap.mail.yahoo.com", 993, "ssl"),
    ("smtp.mail.yahoo.com", 465, "ssl"),
    (_NEEDS_APP_LOGIN.format("Yahoo", "Account security, Generate app password"),),
)
_ICLOUD = Preset(
    "iCloud Mail",
    ("imap.mail.me.com", 993, "ssl"),
    ("smtp.mail.me.com", 587, "starttls"),
    (_NEEDS_APP_LOGIN.format("iCloud", "an app-specific password from account.apple.com"),),
)
_FASTMAIL = Preset(
    "Fastmail",
    ("imap.fastmail.com", 993, "ssl"),
    ("smtp.fastmail.com", 465, "ssl"),
    (_NEEDS_APP_LOGIN.format("Fastmail", "Settings, Privacy & Security, with IMAP and SMTP access"),),
)
_ENABLE_IMAP = "Turn on IMAP access in the {} mailbox settings first: it is off by default."
_GMX = Preset(
    "GMX", ("imap.gmx.net", 993, "ssl"), ("mail.gmx.net", 587, "starttls"), (_ENABLE_IMAP.format("GMX"),)
)
_GMX_COM = replace(_GMX, imap=("imap.gmx.com", 993, "ssl"), smtp=("mail.gmx.com", 587, "starttls"))
_WEBDE = Preset(
    "WEB.DE", ("imap.web.de", 993, "ssl"), ("smtp.web.de", 587, "starttls"), (_ENABLE_IMAP.format("WEB.DE"),)
)
_POSTEO = Preset("Posteo", ("posteo.de", 993, "ssl"), ("posteo.de", 465, "ssl"))
_MAILBOX_ORG = Preset("mailbox.org", ("imap.mailbox.org", 993, "ssl"), ("smtp.mailbox.org", 465, "ssl"))
_PROTON = Preset(
    "Proton Mail",
    # Proton Mail Bridge's defaults: it listens on loopback and speaks STARTTLS on both ports.
    ("127.0.0.1", 1143, "starttls"),
    ("127.0.0.1", 1025, "starttls"),
    (
        "Proton Mail has no IMAP or SMTP of its own: it needs Proton Mail Bridge (paid plans) "
        "running where mailhook can reach it, with the password Bridge shows. Change the host if "
        "Bridge does not run on the mailhook machine.",
    ),
)
_ZOHO_NOTE = (
    "Turn on IMAP access in Zoho Mail's settings; with two-factor authentication use an "
    "application-specific password."
)
_ZOHO = Preset("Zoho Mail", ("imap.zoho.com", 993, "ssl"), ("smtp.zoho.com", 465, "ssl"), (_ZOHO_NOTE,))
_ZOHO_EU = replace(_ZOHO, imap=("imap.zoho.eu", 993, "ssl"), smtp=("smtp.zoho.eu", 465, "ssl"))

#: Presets by the address's domain.
PRESETS: Final[dict[str, Preset]] = {
    **dict.fromkeys(("gmail.com", "googlemail.com"), _GMAIL),
    **dict.fromkeys(("outlook.com", "hotmail.com", "live.com", "msn.com"), _OUTLOOK),
    **dict.fromkeys(("yahoo.com", "ymail.com", "rocketmail.com"), _YAHOO),
    **dict.fromkeys(("icloud.com", "me.com", "mac.com"), _ICLOUD),
    **dict.fromkeys(("fastmail.com", "fastmail.fm"), _FASTMAIL),
    **dict.fromkeys(("gmx.net", "gmx.de", "gmx.at", "gmx.ch"), _GMX),
    "gmx.com": _GMX_COM,
    "web.de": _WEBDE,
    **dict.fromkeys(("posteo.de", "posteo.net", "posteo.at", "posteo.ch", "posteo.eu"), _POSTEO),
    "mailbox.org": _MAILBOX_ORG,
    **dict.fromkeys(("proton.me", "protonmail.com", "protonmail.ch", "pm.me"), _PROTON),
    **dict.fromkeys(("zoho.com", "zohomail.com"), _ZOHO),
    **dict.fromkeys(("zoho.eu", "zohomail.eu"), _ZOHO_EU),
}

#: Providers recognised by the domain their MX hosts are under (custom domains they host).
MX_PRESETS: Final[tuple[tuple[str, Preset], ...]] = (
    ("google.com", _WORKSPACE),
    ("googlemail.com", _WORKSPACE),
    ("protection.outlook.com", _OFFICE365),
    ("messagingengine.com", _FASTMAIL),
    ("yahoodns.net", _YAHOO),
    ("mail.icloud.com", _ICLOUD),
    ("gmx.net", _GMX),
    ("web.de", _WEBDE),
    ("posteo.de", _POSTEO),
    ("mailbox.org", _MAILBOX_ORG),
    ("protonmail.ch", _PROTON),
    ("zoho.com", _ZOHO),
    ("zoho.eu", _ZOHO_EU),
)


def from_preset(preset: Preset, source: Source, address: str) -> Found:
    """Both servers of ``preset``, logging in with the address itself."""
    imap = Server(*preset.imap, source=source, username=address)
    smtp = Server(*preset.smtp, source=source, username=address)
    return Found(imap, smtp, preset.name, list(preset.notes))


def guess_servers(domain: str, address: str, why: str) -> Found:
    """``imap.<domain>`` and ``smtp.<domain>`` with implicit TLS (RFC 8314 section 3)."""
    imap = Server(f"imap.{domain}", 993, "ssl", "mx-guess", address)
    smtp = Server(f"smtp.{domain}", 465, "ssl", "mx-guess", address)
    note = f"{why}; imap.{domain} and smtp.{domain} are only a guess: check them with your provider."
    return Found(imap, smtp, None, [note])


def preset_for_mx_host(host: str) -> Preset | None:
    """The provider whose MX hosts are under a domain that ``host`` is, or is under."""
    for suffix, preset in MX_PRESETS:
        if host == suffix or host.endswith(f".{suffix}"):
            return preset
    return None
