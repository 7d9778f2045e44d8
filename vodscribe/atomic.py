"""Files that appear whole or not at all: written under a hidden temporary name beside the target,
then renamed over it (a rename within one folder is atomic on POSIX), so a reader, a crash or a
concurrent writer never sees half a file. Each writer gets its own temporary name."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _temp_for(path: Path) -> Path:
    # The suffix stays last: ffmpeg picks its muxer from the output file's extension.
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")


def leftovers(path: Path) -> Iterator[Path]:
    """Temporary files of writers of ``path`` (those that died before renaming, and live ones)."""
    return path.parent.glob(f".{path.stem}.*.tmp{path.suffix}")


@contextmanager
def replacing(path: Path, *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; when the block ends without an
    error it replaces ``path`` in one rename, otherwise it is removed. ``durable`` syncs the data to
    disk before the rename (for files that are expensive to make again)."""
    temp = _temp_for(path)
    try:
        yield temp
        if durable:
            fd = os.open(temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes | str, *, durable: bool = False) -> None:
    """Write ``data`` (str as UTF-8, newlines as given) to ``path`` atomically."""
    with replacing(path, durable=durable) as temp:
        if isinstance(data, str):
            temp.write_text(data, encoding="utf-8", newline="")
        else:
            temp.write_bytes(data)
