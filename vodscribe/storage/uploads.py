"""Unfinished TUS uploads on this machine's disk: ``<data_dir>/uploads/<id>/``.

Each upload is a folder holding ``info.json`` (what creation fixed: length, owner, video, file name;
never changed), ``state.json`` (the offset and the expiry, replaced atomically and synced), ``data``
(the bytes) and ``lock``. The offset is the truth, not the size of ``data``: bytes are counted only
once synced to disk, and whoever takes the lock first cuts ``data`` back to the offset, so a crash or a
refused chunk (a checksum mismatch) never leaves bytes that were not acknowledged. The lock is an
``flock`` on ``lock``, so writers in several processes sharing the data directory are serialised.
A request that finds the lock taken asks its holder to let go (a ``release`` file the holder looks
for between chunks), as tusd does: the holder is most often a PATCH whose client went away unseen
(a cut network), which would otherwise keep the upload for its whole read timeout.

State lives on disk only: an upload survives a restart of the service. The id is 128 random bits
(hex), checked against :data:`ID` before it is ever joined to a path.

Beside the uploads, ``.create.lock`` serialises creations (a creation checks what all open uploads
still need, then adds one: across processes, that must not interleave), and ``tokens/`` holds one
empty file per upload token used (named ``<expiry>.<mac>``, created exclusively), so a token makes
one upload; they are swept once the token has expired.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from vodscribe.atomic import write_atomic

ID = re.compile(r"[0-9a-f]{32}")
#: A used token's mark: its expiry (epoch seconds) and its HMAC (hex).
TOKEN = re.compile(r"([0-9]{1,12})\.[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class UploadInfo:
    id: str
    length: int
    client_id: int
    video_id: int
    filename: str | None  # shown, never used as a path
    #: The video's ``{client_id}_{slug}``: an upload finishes only into the video it was made for.
    video_key: str = ""


@dataclass(frozen=True, slots=True)
class UploadState:
    offset: int
    expires: float  # epoch seconds


class Busy(Exception):
    """Another request holds the upload's lock."""


class Gone(Exception):
    """The upload was removed (finished, terminated or swept) meanwhile."""


class TokenUsed(Exception):
    """The upload token has made an upload already."""


@dataclass(frozen=True, slots=True)
class OpenUpload:
    info: UploadInfo
    state: UploadState

    @property
    def missing(self) -> int:
        """Bytes still to come: what the disk must yet make room for."""
        return max(0, self.info.length - self.state.offset)


class UploadFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, upload_id: str) -> Path | None:
        return self.root / upload_id if ID.fullmatch(upload_id) else None

    def create(
        self,
        length: int,
        client_id: int,
        video_id: int,
        filename: str | None,
        expires: float,
        video_key: str = "",
    ) -> UploadInfo:
        self.root.mkdir(parents=True, exist_ok=True)
        info = UploadInfo(secrets.token_hex(16), length, client_id, video_id, filename, video_key)
        folder = self.root / info.id
        folder.mkdir(mode=0o700)
        (folder / "data").touch(mode=0o600)
        (folder / "lock").touch(mode=0o600)
        write_atomic(folder / "state.json", json.dumps(asdict(UploadState(0, expires))), durable=True)
        # info.json last: a folder without it is a creation that did not finish (swept as expired).
        write_atomic(folder / "info.json", json.dumps(asdict(info)), durable=True)
        return info

    def info(self, upload_id: str) -> UploadInfo | None:
        folder = self._folder(upload_id)
        if folder is None:
            return None
        try:
            return UploadInfo(**json.loads((folder / "info.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def state(self, upload_id: str) -> UploadState:
        folder = self._folder(upload_id)
        assert folder is not None
        return UploadState(**json.loads((folder / "state.json").read_text()))

    def data_path(self, upload_id: str) -> Path:
        folder = self._folder(upload_id)
        assert folder is not None
        return folder / "data"

    def try_lock(self, upload_id: str) -> IO[str] | None:
        """Take the upload's lock, or None at once if another holder has it. ``data`` is then cut back
        to the acknowledged offset. Give it back with :meth:`unlock`. Raises :class:`Gone` if the
        upload was removed before or while the lock was taken."""
        folder = self._folder(upload_id)
        if folder is None:
            raise Gone
        try:
            handle = (folder / "lock").open("r")  # never "a": that would create it in a new folder
        except FileNotFoundError as exc:
            raise Gone from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        try:
            if not (folder / "info.json").exists():  # removed by the holder before us
                raise Gone
            (folder / "release").unlink(missing_ok=True)  # asked of the holder before us
            os.truncate(folder / "data", self.state(upload_id).offset)
        except BaseException:
            self.unlock(handle)
            raise
        return handle

    def request_release(self, upload_id: str) -> None:
        """Ask the holder of the upload's lock to end its request and give the lock back."""
        folder = self._folder(upload_id)
        if folder is not None:
            with contextlib.suppress(FileNotFoundError):  # the upload is gone: nothing to ask
                (folder / "release").touch(mode=0o600)

    def release_requested(self, upload_id: str) -> bool:
        """Whether another request waits for the lock this request holds."""
        folder = self._folder(upload_id)
        return folder is not None and (folder / "release").exists()

    @staticmethod
    def unlock(handle: IO[str]) -> None:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()

    @contextlib.contextmanager
    def locked(self, upload_id: str) -> Iterator[None]:
        """:meth:`try_lock` for a block; raises :class:`Busy` if another holder has the lock."""
        handle = self.try_lock(upload_id)
        if handle is None:
            raise Busy
        try:
            yield
        finally:
            self.unlock(handle)

    def discard_unacknowledged(self, upload_id: str, handle: IO[bytes]) -> None:
        """Drop what was written since the last acknowledgement (under the lock)."""
        handle.truncate(self.state(upload_id).offset)

    def open_for_append(self, upload_id: str) -> IO[bytes]:
        """``data`` positioned at its end (the offset, under the lock)."""
        handle = self.data_path(upload_id).open("r+b")
        handle.seek(0, os.SEEK_END)
        return handle

    def acknowledge(self, upload_id: str, handle: IO[bytes], expires: float) -> int:
        """Sync what was written through ``handle`` and record it as the new offset (under the lock)."""
        handle.flush()
        os.fsync(handle.fileno())
        offset = handle.tell()
        folder = self._folder(upload_id)
        assert folder is not None
        write_atomic(folder / "state.json", json.dumps(asdict(UploadState(offset, expires))), durable=True)
        return offset

    def remove(self, upload_id: str) -> None:
        folder = self._folder(upload_id)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def expired(self, now: float) -> list[str]:
        """Uploads whose expiry has passed, and folders a crash left half-created."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in self.root.iterdir():
            if not ID.fullmatch(folder.name):
                continue
            try:
                expires = json.loads((folder / "state.json").read_text())["expires"]
            except (OSError, ValueError, KeyError):
                expires = folder.stat().st_mtime + 3600  # a creation that died: gone after an hour
            if float(expires) < now:
                found.append(folder.name)
        return found

    def sweep(self, upload_id: str) -> bool:
        """Remove an expired upload unless a request holds it now; True if removed."""
        folder = self._folder(upload_id)
        if folder is None or not folder.is_dir():
            return False
        try:
            with (folder / "lock").open("r") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(folder, ignore_errors=True)
        except BlockingIOError:
            return False
        except FileNotFoundError:  # a folder without its lock file: creation died early
            shutil.rmtree(folder, ignore_errors=True)
        return True

    @contextlib.contextmanager
    def creating(self) -> Iterator[None]:
        """Hold the creation lock (blocking): no other process creates an upload meanwhile."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".create.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def open_uploads(self) -> list[OpenUpload]:
        """Every upload on disk that has not finished nor been removed (expired ones included until
        they are swept: their space is still taken)."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in self.root.iterdir():
            info = self.info(folder.name)
            if info is None:
                continue
            try:
                found.append(OpenUpload(info, self.state(info.id)))
            except (OSError, ValueError, TypeError):  # removed meanwhile
                continue
        return found

    def use_token(self, mark: str) -> None:
        """Record that the token ``mark`` (``<expiry>.<mac>``) made an upload; raises
        :class:`TokenUsed` if it already had."""
        if not TOKEN.fullmatch(mark):
            raise ValueError("not a token mark")
        folder = self.root / "tokens"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(folder / mark, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError as exc:
            raise TokenUsed from exc

    def sweep_tokens(self, now: float) -> int:
        """Forget used tokens that have expired (they are refused for that anyway); returns how many."""
        folder = self.root / "tokens"
        if not folder.is_dir():
            return 0
        swept = 0
        for mark in folder.iterdir():
            found = TOKEN.fullmatch(mark.name)
            if found is not None and int(found.group(1)) < now:
                mark.unlink(missing_ok=True)
                swept += 1
        return swept

    def free_bytes(self) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(self.root).free
