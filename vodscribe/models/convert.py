"""Checkpoint to CTranslate2, at pull time, with CTranslate2's own converter.

The translation models' authors publish transformers checkpoints (M2M100, NLLB-200, Marian for
OPUS-MT), not CTranslate2 conversions. ``ctranslate2.converters.TransformersConverter`` needs
``transformers`` and ``torch``: the optional extra ``vodscribe[convert]``, wanted only on the
machine that pulls. The weights are stored in float16 (half the disk of float32); CTranslate2
turns them into int8 on a CPU and keeps float16 on a GPU at load time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from vodscribe.models.store import ModelError

#: Tokenizer files the NMT engine reads beside ``model.bin`` (copied when the checkpoint has them;
#: ``config.json`` is not among them: the converter writes its own).
TOKENIZER_FILES = (
    "sentencepiece.bpe.model",
    "source.spm",
    "target.spm",
    "spiece.model",
    "sentencepiece.model",
)
QUANTIZATION = "float16"


class ConverterMissingError(ModelError):
    def __init__(self, missing: str) -> None:
        super().__init__(
            f"Converting this model to CTranslate2 needs {missing}, which is not installed; add it "
            "with: pip install 'vodscribe[convert]' (transformers and torch; only the machine that "
            "pulls needs it)"
        )


def convert_checkpoint(checkpoint: Path, output: Path) -> str:
    """Convert the transformers checkpoint in ``checkpoint`` into ``output``; returns what
    converted it (recorded in the lock file)."""
    try:
        import ctranslate2
        from ctranslate2.converters import TransformersConverter
    except ImportError as exc:  # pragma: no cover - ctranslate2 is a core dependency
        raise ConverterMissingError("ctranslate2") from exc
    for module in ("torch", "transformers"):
        try:
            __import__(module)
        except ImportError as exc:
            raise ConverterMissingError(module) from exc
    import transformers

    copy = [name for name in TOKENIZER_FILES if (checkpoint / name).is_file()]
    shutil.rmtree(output, ignore_errors=True)
    try:
        TransformersConverter(str(checkpoint), copy_files=copy, low_cpu_mem_usage=True).convert(
            str(output), quantization=QUANTIZATION, force=True
        )
    except (ValueError, OSError, KeyError, NotImplementedError) as exc:
        shutil.rmtree(output, ignore_errors=True)
        raise ModelError(f"Converting {checkpoint.name} to CTranslate2 failed: {exc}") from exc
    return f"ctranslate2 {ctranslate2.__version__} ({QUANTIZATION}), transformers {transformers.__version__}"
