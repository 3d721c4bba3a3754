"""Where uploaded materials are kept: a local folder by default, behind a small interface
(an S3-compatible store would implement the same two calls).

Files are content-addressed (the key is the sha256), so the same file uploaded twice is kept
once and a stored file can be checked against its digest whenever it is read.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    def put(self, data: bytes) -> str: ...

    def get(self, key: str) -> bytes: ...


class StoredFileCorrupt(Exception):
    """A stored file no longer matches the digest it was stored under."""


class LocalFolderStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise KeyError(key)
        return self.root / key[:2] / key

    def put(self, data: bytes) -> str:
        """Store `data` (once); its key."""
        key = hashlib.sha256(data).hexdigest()
        path = self._path(key)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written aside and renamed: a reader never sees half a file.
            handle, temporary = tempfile.mkstemp(dir=path.parent)
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
        return key

    def get(self, key: str) -> bytes:
        data = self._path(key).read_bytes()
        if hashlib.sha256(data).hexdigest() != key:
            raise StoredFileCorrupt(key)
        return data
