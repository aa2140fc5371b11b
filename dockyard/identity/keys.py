"""Fernet key repository, laid out like Keystone's: 0 is staged, the highest is primary."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet


def _indexes(key_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in key_dir.iterdir() if p.name.isdigit())


def _write_key(path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(Fernet.generate_key())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def ensure_keys(key_dir: Path) -> None:
    """Create the repository with a staged and a primary key if it has none."""
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    existing = _indexes(key_dir)
    if 0 not in existing:
        _write_key(key_dir / "0")
    if not [i for i in _indexes(key_dir) if i > 0]:
        _write_key(key_dir / "1")


def rotate_keys(key_dir: Path, max_active: int = 3) -> int:
    """Promote the staged key to primary, stage a new one, drop the oldest beyond max_active.

    Returns the new primary's index. Tokens signed with any kept key stay valid.
    """
    ensure_keys(key_dir)
    new_primary = max(_indexes(key_dir)) + 1
    os.replace(key_dir / "0", key_dir / str(new_primary))
    _write_key(key_dir / "0")
    secondaries = [i for i in _indexes(key_dir) if 0 < i < new_primary]
    for old in secondaries[: max(0, len(secondaries) - (max_active - 2))]:
        (key_dir / str(old)).unlink()
    return new_primary


@dataclass(frozen=True)
class KeySnapshot:
    stamp: tuple
    fernet: MultiFernet


class KeyRing:
    """Reads the repository again whenever it changes, so rotation needs no restart."""

    def __init__(self, key_dir: Path):
        self.key_dir = key_dir
        self._snapshot: KeySnapshot | None = None

    def _stamp(self) -> tuple:
        return tuple(
            (p.name, p.stat().st_mtime_ns)
            for p in sorted(self.key_dir.iterdir())
            if p.name.isdigit()
        )

    def fernet(self) -> MultiFernet:
        stamp = self._stamp()
        snap = self._snapshot
        if snap is None or snap.stamp != stamp:
            order = sorted(_indexes(self.key_dir), reverse=True)  # primary first, staged last
            keys = [Fernet((self.key_dir / str(i)).read_bytes().strip()) for i in order]
            if not keys:
                raise RuntimeError(f"no Fernet keys in {self.key_dir}")
            snap = KeySnapshot(stamp, MultiFernet(keys))
            self._snapshot = snap
        return snap.fernet
