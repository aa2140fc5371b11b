"""The blob store: image data as files under one directory, written via temp file + rename.

A `BlobWriter` streams chunks into `<root>/.tmp/<random>.part`, hashing (md5, sha512) and
counting as it goes, and refuses to grow past a byte limit. `commit()` renames the finished
file to `<root>/<image id>` atomically; `abort()` removes it. A crash leaves only `.part`
files, which `sweep_temp()` removes once they have been idle for an hour.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

TEMP_DIR = ".tmp"
STALE_TEMP_SECONDS = 3600


class LimitExceeded(Exception):
    """More bytes arrived than the writer may accept."""

    def __init__(self, limit: int):
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class WrittenBlob:
    path: Path  # the temp file, until committed
    size: int
    md5: str
    sha512: str


class BlobWriter:
    """Writes one blob to a temp file; use as a context manager so failures clean up."""

    def __init__(self, store: BlobStore, limit: int | None = None):
        self.store = store
        self.limit = limit
        self.path = store.temp_dir / f"{uuid.uuid4().hex}.part"
        self._file = open(self.path, "xb")  # noqa: SIM115 (closed in finish/abort)
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha512 = hashlib.sha512()
        # sha512 runs beside md5 + the write (hashlib drops the GIL for big buffers)
        self._helper = ThreadPoolExecutor(1, thread_name_prefix="blob-hash")
        self.size = 0
        self.done = False

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise LimitExceeded(self.limit)
        pending = self._helper.submit(self._sha512.update, chunk)
        try:
            self._md5.update(chunk)
            self._file.write(chunk)
        finally:
            pending.result()

    def finish(self) -> WrittenBlob:
        self._helper.shutdown()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return WrittenBlob(self.path, self.size, self._md5.hexdigest(), self._sha512.hexdigest())

    def abort(self) -> None:
        self._helper.shutdown()
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self.done:
            self.abort()


class BlobStore:
    def __init__(self, root: Path):
        self.root = root
        self.temp_dir = root / TEMP_DIR
        self.temp_dir.mkdir(parents=True, exist_ok=True)

    def writer(self, limit: int | None = None) -> BlobWriter:
        return BlobWriter(self, limit)

    def path_for(self, image_id: str) -> Path:
        if not image_id or "/" in image_id or image_id.startswith("."):
            raise ValueError(f"bad image id for a blob path: {image_id!r}")
        return self.root / image_id

    def commit(self, blob: WrittenBlob, image_id: str) -> str:
        """Move a finished temp file into place; returns its location URI."""
        final = self.path_for(image_id)
        os.replace(blob.path, final)
        return final.as_uri()

    @staticmethod
    def local_path(location: str | None) -> Path | None:
        if not location:
            return None
        parsed = urlparse(location)
        if parsed.scheme != "file":
            return None
        return Path(unquote(parsed.path))

    def delete(self, location: str | None) -> None:
        path = self.local_path(location)
        if path is not None and path.parent == self.root:
            path.unlink(missing_ok=True)

    def sweep_orphans(self, known: set[str], older_than: float = STALE_TEMP_SECONDS) -> int:
        """Remove blobs no image points at (a crash between rename and commit left them).

        Only files untouched for a while: another process may be committing a fresh one."""
        removed = 0
        cutoff = time.time() - older_than
        for path in self.root.iterdir():
            if not path.is_file() or path.name in known:
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def sweep_temp(self, older_than: float = STALE_TEMP_SECONDS) -> int:
        """Remove temp files no writer has touched for a while (left by a crash)."""
        removed = 0
        cutoff = time.time() - older_than
        for part in self.temp_dir.glob("*.part"):
            try:
                if part.stat().st_mtime < cutoff:
                    part.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
