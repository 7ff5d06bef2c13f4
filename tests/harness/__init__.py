"""Harness for integration tests that run real mail and database servers on loopback.

- ``tests.harness.ports``: free TCP ports on 127.0.0.1 and waiting for a listener.
- ``tests.harness.postfix``: ``PostfixInstance``, a private Postfix that relays to mailhook LMTP.
- ``tests.harness.postgres``: ``PostgresServer``, a throwaway PostgreSQL cluster.

Both servers drop root privileges (to ``postfix`` and ``postgres``), so their files must live
where those users can reach them. pytest's ``tmp_path`` sits below ``/tmp/pytest-of-root``, which
is mode 0700: ``service_dir()`` below hands out a directory that is reachable, placed in the
system temp directory with a symlink from the test's tmp dir when it has to be.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
from pathlib import Path


def _others_can_traverse(path: Path) -> bool:
    """True when every directory from ``/`` down to ``path`` has the other-execute bit."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents))


def service_dir(tmp_dir: Path, name: str) -> Path:
    """Create and return an empty directory (mode 0755) for a daemon that drops privileges.

    It is ``tmp_dir / name`` when other users can reach that; otherwise a fresh directory in the
    system temp directory, with ``tmp_dir / name`` made a symlink to it so test output stays
    findable. ``remove_service_dir()`` deletes such an out-of-tree directory again.
    """
    tmp_dir.mkdir(parents=True, exist_ok=True)
    inside = tmp_dir / name
    if _others_can_traverse(tmp_dir):
        inside.mkdir()
        inside.chmod(0o755)
        return inside
    bases = [Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")]
    base = next((b for b in bases if b.is_dir() and _others_can_traverse(b)), None)
    if base is None:
        raise RuntimeError(f"no world-traversable temp directory among {bases}")
    outside = Path(tempfile.mkdtemp(prefix=f"mailhook-{name}-", dir=base))
    outside.chmod(0o755)
    inside.symlink_to(outside, target_is_directory=True)
    return outside


def remove_service_dir(tmp_dir: Path, name: str) -> None:
    """Delete the out-of-tree directory behind ``tmp_dir / name``, if ``service_dir`` made one.

    A directory inside ``tmp_dir`` is left for pytest to clean up with the rest of the tmp dir.
    """
    link = tmp_dir / name
    if link.is_symlink():
        shutil.rmtree(link.resolve(), ignore_errors=True)
        link.unlink()
