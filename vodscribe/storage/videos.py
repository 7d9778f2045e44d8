"""Where a video's files live: ``<data_dir>/videos/<client_id>_<slug>/`` (renditions, HLS, screenshot,
subtitle playlists). The same relative paths are the public URLs under ``/videos/<client_id>_<slug>/``."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class VideoFiles:
    def __init__(self, root: Path, key: str) -> None:
        self.dir = root / "videos" / key

    def path(self, relative: str) -> Path | None:
        """The file at ``relative`` inside the video's folder, or None (also for ``..`` tricks)."""
        base = self.dir.resolve()
        candidate = (base / relative).resolve()
        if base not in candidate.parents or not candidate.is_file():
            return None
        return candidate

    @contextmanager
    def locked(self) -> Iterator[Path]:
        """Serialise writers of the playlists (API and workers may publish at the same time)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield self.dir
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def delete(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
