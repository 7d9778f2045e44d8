"""Scratch space for one job: a directory that is always removed afterwards."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def incoming_folder(root: Path) -> Path:
    """``root/incoming``: where the API writes what a request brings (an upload, a subtitle's text)
    before it goes into the media store."""
    folder = root / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def workspace(root: Path, name: str) -> Iterator[Path]:
    """``root/name``, emptied first (a re-run after a crash starts clean) and removed at the end."""
    path = root / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
