"""Attachment risk by name, declared type and magic bytes, for both directions.

Outbound, the question is "does this file leak something" (keys, keystores, databases) or "should
an agent ever send this" (executables, disguised names). Inbound, it is "can this file run or
smuggle something" (executables, macro documents, archives, disk images, HTML/SVG that opens a
local phishing page). Names are judged the way Windows does: case-insensitively and ignoring
trailing dots and spaces, which Explorer strips ("invoice.exe." runs as an .exe).
"""

from __future__ import annotations

import re

from mailhook.mail.mime import Attachment

EXECUTABLE = frozenset(
    {"exe", "bat", "cmd", "com", "pif", "scr", "cpl", "msi", "msp", "msc", "dll", "js", "jse"}
    | {"vbs", "vbe", "wsf", "wsh", "hta", "ps1", "psm1", "sh", "bash", "jar", "lnk", "reg", "scf"}
    | {"appx", "msix", "appref-ms", "application", "gadget", "chm", "url", "xll", "one", "apk"}
)
SECRET_FILES = frozenset({"pem", "key", "p12", "pfx", "env", "keystore", "jks", "kdbx", "ppk", "ovpn"})
# Well-known secret file names that have no telling extension.
SECRET_NAMES = frozenset(
    {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".env", ".npmrc", ".pypirc", ".netrc"}
    | {".pgpass", ".htpasswd", ".git-credentials", "credentials", "shadow", "kubeconfig"}
)
DATABASES = frozenset({"sqlite", "sqlite3", "db", "sql", "mdb", "accdb", "dump"})
MACRO_OFFICE = frozenset({"docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppam", "ppsm", "sldm"})
ARCHIVES = frozenset(
    {"zip", "rar", "7z", "tar", "gz", "tgz", "bz2", "xz", "cab", "arj", "lzh", "ace", "z", "zst"}
)
DISK_IMAGES = frozenset({"iso", "img", "vhd", "vhdx", "dmg"})
ACTIVE_CONTENT = frozenset({"html", "htm", "shtml", "xhtml", "mht", "mhtml", "svg", "svgz"})
TEXT_LIKE = frozenset(
    {"txt", "csv", "json", "yml", "yaml", "env", "ini", "conf", "cfg", "log", "md", "xml", "toml"}
)
# Extensions a disguised executable pretends to be ("invoice.pdf.exe").
_DECOYS = frozenset(
    {"pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "rtf", "txt", "csv", "jpg", "jpeg"}
    | {"png", "gif", "mp3", "mp4", "zip", "html", "htm", "odt", "ods"}
)
_EXECUTABLE_TYPES = frozenset(
    {"application/x-msdownload", "application/x-msdos-program", "application/x-executable"}
    | {"application/vnd.microsoft.portable-executable", "application/x-dosexec"}
    | {"application/x-sh", "application/x-shellscript", "application/java-archive", "application/hta"}
    | {"application/x-ms-installer", "application/x-msi", "application/x-bat"}
)
_ACTIVE_TYPES = frozenset({"text/html", "image/svg+xml", "application/xhtml+xml"})
_TEXT_TYPES = frozenset(
    {"application/json", "application/xml", "application/x-yaml", "application/yaml", "application/toml"}
)
# PE ("MZ"), ELF, Mach-O (both byte orders, 32/64-bit and fat binaries).
_EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf")
_FAT_MACHO = b"\xca\xfe\xba\xbe"
# Bidi controls and long blank runs hide the real extension from the reader (RLO "gpj.exe").
_DISGUISE = re.compile(r"[\u202a-\u202e\u2066-\u2069\u200e\u200f]| {4,}\.")


def extensions(filename: str) -> list[str]:
    """Lower-cased extensions of ``filename`` in order ("a.PDF.exe" → ["pdf", "exe"])."""
    name = filename.strip().rstrip(". ").lower()
    parts = name.split(".")
    return [p.strip() for p in parts[1:] if p.strip()]


def _base_name(filename: str) -> str:
    return filename.strip().rstrip(". ").lower()


def is_executable(attachment: Attachment) -> bool:
    """Executable or script by extension, declared type, or the file's own magic bytes."""
    exts = extensions(attachment.filename)
    head = attachment.data[:4]
    return (
        bool(exts and exts[-1] in EXECUTABLE)
        or attachment.content_type.lower() in _EXECUTABLE_TYPES
        or head.startswith(_EXECUTABLE_MAGIC)
        or (head == _FAT_MACHO and exts[-1:] != ["class"])  # Java class files share the magic
    )


def has_double_extension(filename: str) -> bool:
    """A document-looking name that really ends in a risky type, or a disguised extension."""
    exts = extensions(filename)
    risky = EXECUTABLE | ACTIVE_CONTENT | MACRO_OFFICE
    disguised = len(exts) >= 2 and exts[-1] in risky and exts[-2] in _DECOYS
    return disguised or (bool(exts) and _DISGUISE.search(filename.lower()) is not None)


def is_secret_file(filename: str) -> bool:
    """Keys, keystores, password vaults, VPN profiles and dotfiles that hold credentials."""
    exts = extensions(filename)
    base = _base_name(filename)
    return base in SECRET_NAMES or base.startswith(".env") or bool(exts and exts[-1] in SECRET_FILES)


def is_database(filename: str) -> bool:
    """Database files and SQL dumps: whole tables of someone's data."""
    exts = extensions(filename)
    return bool(exts and exts[-1] in DATABASES)


def _last_ext(attachment: Attachment) -> str:
    exts = extensions(attachment.filename)
    return exts[-1] if exts else ""


def is_macro_office(attachment: Attachment) -> bool:
    """Office Open XML types that may carry VBA macros (ECMA-376 "m" variants)."""
    return _last_ext(attachment) in MACRO_OFFICE or "macroenabled" in attachment.content_type.lower()


def is_archive(attachment: Attachment) -> bool:
    """Archives hide their content from scanners and invite "open it to see"."""
    # No "PK" magic test: .docx, .xlsx, .odt and .jar are ZIP files too.
    return _last_ext(attachment) in ARCHIVES or attachment.data.startswith((b"Rar!", b"7z\xbc\xaf"))


def is_disk_image(attachment: Attachment) -> bool:
    """Disk images: their content escapes Windows' mark-of-the-web."""
    return _last_ext(attachment) in DISK_IMAGES


def is_active_content(attachment: Attachment) -> bool:
    """HTML or SVG files: they open a local page (a credential form) in the browser."""
    return _last_ext(attachment) in ACTIVE_CONTENT or attachment.content_type.lower() in _ACTIVE_TYPES


def is_text_like(attachment: Attachment) -> bool:
    """Worth scanning as text: a text type or extension, or bytes that simply are UTF-8 text."""
    ctype = attachment.content_type.lower()
    if ctype.startswith("text/") or ctype in _TEXT_TYPES or _last_ext(attachment) in TEXT_LIKE:
        return True
    if is_secret_file(attachment.filename):
        return True
    return _looks_like_text(attachment.data)


_SNIFF = 4096


def _looks_like_text(data: bytes) -> bool:
    """No NUL bytes and valid UTF-8 in the first 4 KiB (a renamed key file is still text)."""
    head = data[:_SNIFF]
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the 4 KiB window is still text.
        return exc.start >= len(head) - 3
    return True


def decode_text(data: bytes) -> str:
    """Text of an attachment: BOM-marked UTF-16/32 or UTF-8 (invalid bytes replaced)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8-sig", errors="replace").replace("\r\n", "\n")
