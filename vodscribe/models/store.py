"""Pulled models on disk and the lock file that holds their hashes.

``DATA_DIR/models/NAME/`` holds one model's files; ``DATA_DIR/models/models.lock.json`` records,
for each, the repository and the commit it came from and the size and SHA-256 of every file, as
written by the first pull. Every load checks the files against it and refuses a model whose file
changed, naming the file. The whole folder can be copied to a machine without internet (the
offline route): the lock travels with the files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vodscribe.atomic import write_atomic
from vodscribe.models.catalogue import Kind

LOCK_FILE = "models.lock.json"
LOCK_VERSION = 1
_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LockedFile:
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class LockEntry:
    """What the first pull of a model recorded."""

    name: str
    kind: Kind
    repo: str
    revision: str
    """The commit the files came from (what later pulls of this name are pinned to)."""
    files: dict[str, LockedFile]
    """The model's files, relative to its folder."""
    source: dict[str, LockedFile] = field(default_factory=dict)
    """For a converted model: the checkpoint files it was converted from."""
    converter: str | None = None
    """For a converted model: what converted it (``ctranslate2 4.x``, quantization)."""
    pulled_at: str = ""

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files.values())

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("name")
        return data

    @classmethod
    def from_json(cls, name: str, data: dict[str, object]) -> LockEntry:
        def files(key: str) -> dict[str, LockedFile]:
            raw = data.get(key) or {}
            assert isinstance(raw, dict)
            return {str(k): LockedFile(int(v["size"]), str(v["sha256"])) for k, v in raw.items()}

        converter = data.get("converter")
        return cls(
            name=name,
            kind=str(data["kind"]),  # type: ignore[arg-type]
            repo=str(data["repo"]),
            revision=str(data["revision"]),
            files=files("files"),
            source=files("source"),
            converter=None if converter is None else str(converter),
            pulled_at=str(data.get("pulled_at") or ""),
        )


class ModelError(RuntimeError):
    """A model that cannot be used: not pulled, changed on disk, or a broken lock file."""


class ModelNotPulledError(ModelError):
    def __init__(self, name: str, kind: Kind) -> None:
        self.name = name
        self.kind = kind
        self.command = f"vodscribe models pull {name}"
        what = {"asr": "Speech model", "nmt": "Translation model", "llm": "Chat model"}[kind]
        super().__init__(f"{what} {name!r} is not pulled; run: {self.command}")


class ModelChangedError(ModelError):
    """A file of a pulled model does not match its lock entry."""

    def __init__(self, name: str, file: str, problem: str) -> None:
        self.name = name
        self.file = file
        super().__init__(
            f"Model {name!r}: file {file} {problem}; refusing to load it "
            f"(pull it again: vodscribe models remove {name} && vodscribe models pull {name})"
        )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(folder: Path, names: list[str] | None = None) -> dict[str, LockedFile]:
    """Size and SHA-256 of ``names`` in ``folder`` (default: every file below it, hidden ones
    and the hub client's ``.cache`` left out)."""
    if names is None:
        names = sorted(
            str(p.relative_to(folder))
            for p in folder.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
    return {n: LockedFile((folder / n).stat().st_size, sha256_of(folder / n)) for n in names}


# Hashing a 3 GB model takes seconds: a process checks each file once, again only if it changed.
_verified: set[tuple[str, int, int, str]] = set()
_verified_lock = threading.Lock()


class ModelStore:
    """The models folder (``DATA_DIR/models``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_FILE

    def folder(self, name: str) -> Path:
        return self.root / name

    # --- the lock file ------------------------------------------------------------------------
    def entries(self) -> dict[str, LockEntry]:
        try:
            raw = json.loads(self.lock_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ModelError(f"The lock file {self.lock_path} cannot be read: {exc}") from exc
        models = raw.get("models") if isinstance(raw, dict) else None
        if not isinstance(models, dict):
            raise ModelError(f"The lock file {self.lock_path} has no 'models' table")
        try:
            return {name: LockEntry.from_json(name, data) for name, data in models.items()}
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            raise ModelError(f"The lock file {self.lock_path} is malformed: {exc!r}") from exc

    def entry(self, name: str) -> LockEntry | None:
        return self.entries().get(name)

    @contextmanager
    def _locked(self, name: str = ".lock") -> Iterator[None]:
        """An exclusive lock between processes on ``root/name`` (waits for the holder)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / name).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def pulling(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Held while ``name`` is pulled: a second pull of it (another worker pulling on start)
        waits, then finds it pulled, instead of writing the same partial files."""
        return self._locked(f".{name}.pull-lock")

    def _write(self, entries: dict[str, LockEntry]) -> None:
        body = {
            "version": LOCK_VERSION,
            "models": {name: entries[name].to_json() for name in sorted(entries)},
        }
        write_atomic(self.lock_path, json.dumps(body, indent=2) + "\n", durable=True)

    def record(self, entry: LockEntry) -> None:
        with self._locked():
            entries = self.entries()
            entries[entry.name] = entry
            self._write(entries)

    def remove(self, name: str) -> bool:
        """Delete a model's files and its lock entry; False if there was neither."""
        with self._locked():
            entries = self.entries()
            found = entries.pop(name, None) is not None
            if found:
                self._write(entries)
        folder = self.folder(name)
        if folder.exists():
            shutil.rmtree(folder)
            found = True
        return found

    # --- what is here ---------------------------------------------------------------------------
    def installed(self, name: str) -> LockEntry | None:
        """The lock entry of ``name`` if all its files are present at their recorded sizes (cheap:
        nothing is hashed). The API server uses this; loading verifies hashes."""
        entry = self.entry(name)
        if entry is None:
            return None
        folder = self.folder(name)
        for rel, locked in entry.files.items():
            try:
                if (folder / rel).stat().st_size != locked.size:
                    return None
            except OSError:
                return None
        return entry

    def problems(self, name: str) -> list[str]:
        """Every file of ``name`` that differs from the lock (``verify``): empty when it is intact."""
        entry = self.entry(name)
        if entry is None:
            return [f"{name} is not in {self.lock_path}"]
        folder = self.folder(name)
        found = []
        for rel, locked in sorted(entry.files.items()):
            path = folder / rel
            if not path.is_file():
                found.append(f"{rel}: missing")
            elif path.stat().st_size != locked.size:
                found.append(f"{rel}: size {path.stat().st_size}, expected {locked.size}")
            elif (actual := sha256_of(path)) != locked.sha256:
                found.append(f"{rel}: sha256 {actual}, expected {locked.sha256}")
        return found

    def verified(self, name: str, kind: Kind) -> Path:
        """The folder of a pulled model after checking every file against the lock; raises
        :class:`ModelNotPulledError` or :class:`ModelChangedError` (naming the file)."""
        entry = self.entry(name)
        if entry is None:
            raise ModelNotPulledError(name, kind)
        if entry.kind != kind:
            raise ModelError(f"Model {name!r} is a {entry.kind} model, not {kind}")
        folder = self.folder(name)
        for rel, locked in sorted(entry.files.items()):
            path = folder / rel
            try:
                st = path.stat()
            except OSError:
                raise ModelChangedError(name, rel, "is missing") from None
            if st.st_size != locked.size:
                raise ModelChangedError(name, rel, f"has {st.st_size} bytes, the lock says {locked.size}")
            key = (str(path), st.st_size, st.st_mtime_ns, locked.sha256)
            with _verified_lock:
                if key in _verified:
                    continue
            actual = sha256_of(path)
            if actual != locked.sha256:
                raise ModelChangedError(name, rel, f"has sha256 {actual}, the lock says {locked.sha256}")
            with _verified_lock:
                _verified.add(key)
        return folder

    def disk_usage(self, name: str) -> int:
        folder = self.folder(name)
        total = 0
        for dirpath, _, names in os.walk(folder):
            for n in names:
                with suppress(OSError):
                    total += (Path(dirpath) / n).stat().st_size
        return total
