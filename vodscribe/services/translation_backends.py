"""The translation backends this deployment has, in the configured order of preference.

``VODSCRIBE_TRANSLATION_BACKENDS`` lists them (default ``nmt,llm,whisper``); a language pair goes
to the first one that can produce it:

* ``nmt``: every CTranslate2 model directory in ``VODSCRIBE_NMT_MODELS`` (none by default);
* ``llm``: the local LLM, when the ``vodscribe[llm]`` extra is installed (or ``VODSCRIBE_LLM_MODEL``
  names a GGUF file);
* ``whisper``: Whisper's translate task, any language to English (always there).

The LLM comes before Whisper because recognising the speech and translating the text scored chrF
57 against Whisper base's own translate task's 39 on the same clips (``bench/translate.py``);
Whisper stays the fallback for the languages the LLM does not know, and for installs without it.

Building the list reads only metadata, so the API server uses it for ``/ai/info`` and to refuse a
pair up front; the weights load in a worker on the first translation.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from vodscribe.config import Settings
from vodscribe.languages import Language
from vodscribe.speech.subtitle_translation import TextTranslation, Translator, WhisperTranslation, choose

log = logging.getLogger(__name__)

BACKENDS = ("nmt", "whisper", "llm")


class TranslationConfigError(ValueError):
    """``VODSCRIBE_TRANSLATION_BACKENDS`` or a backend's settings are wrong."""


def translators_for(settings: Settings) -> tuple[Translator, ...]:
    """The configured backends (cached per configuration)."""
    return _translators(
        settings.translation_backends,
        settings.nmt_models,
        settings.nmt_device,
        settings.nmt_compute_type,
        settings.nmt_beam_size,
        settings.llm_model,
        settings.llm_threads,
        settings.llm_gpu_layers,
        settings.data_dir / "models",
    )


@lru_cache(maxsize=8)
def _translators(
    order: str,
    nmt_models: str,
    nmt_device: str,
    nmt_compute_type: str,
    nmt_beam_size: int,
    llm_model: str,
    llm_threads: int,
    llm_gpu_layers: int,
    model_cache: Path,
) -> tuple[Translator, ...]:
    names = [name.strip().lower() for name in order.split(",") if name.strip()]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown:
        raise TranslationConfigError(
            f"Unknown translation backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}"
        )
    result: list[Translator] = []
    for name in dict.fromkeys(names):
        if name == "whisper":
            result.append(WhisperTranslation())
        elif name == "nmt":
            from vodscribe.engines.nmt import load_translators

            for entry in (e.strip() for e in nmt_models.split(",")):
                if not entry:
                    continue
                model_dir, _, pair = entry.partition("=")  # "dir" or "dir=en-de" (single-pair OPUS-MT)
                [engine] = load_translators(
                    [model_dir.strip()],
                    device=nmt_device,
                    compute_type=nmt_compute_type,
                    beam_size=nmt_beam_size,
                    pair=pair.strip() or None,
                )
                result.append(TextTranslation(engine))
        elif name == "llm" and llm_model:
            from vodscribe.engines.llm import LlamaTranslator, llm_available

            if llm_model == "bundled" and not llm_available():
                log.info("LLM translation is off: install vodscribe[llm] to turn it on")
                continue
            llm = LlamaTranslator(
                llm_model, cache_dir=model_cache, threads=llm_threads, gpu_layers=llm_gpu_layers
            )
            result.append(TextTranslation(llm))
    return tuple(result)


def can_translate(settings: Settings, source: Language, target: Language) -> bool:
    return choose(translators_for(settings), source, target) is not None
