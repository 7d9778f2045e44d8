"""Subtitle translation with a local instruction-tuned LLM through llama.cpp (``vodscribe[llm]``).

The default model is the bundled Qwen2.5-Coder-1.5B-Instruct (see :mod:`bundled_llm`); any chat GGUF
file can be named instead. Sentences go to the model in small numbered batches and come back as
numbered lines (:mod:`vodscribe.engines.chat_translation`,
shared with the OpenAI-compatible backend); the lines an answer misses are redone one by one, so a
translation can never slide onto another sentence's time. Decoding is greedy (temperature 0), so the
same input gives the same subtitles.

The languages offered are the ones Qwen2.5 was trained for (its model card's list), limited to those
vodscribe knows, or those of the catalogue entry of a pulled chat model; the bundled model's quality
is well below a dedicated NMT model (see ``bench/README.md``), which is why NMT comes first in the
default backend order.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vodscribe import metrics
from vodscribe.engines import bundled_llm
from vodscribe.engines.chat_translation import ChatLanguages, ChatTranslation
from vodscribe.engines.text_translator import TranslationError
from vodscribe.languages import Language
from vodscribe.models.catalogue import QWEN_LANGUAGES
from vodscribe.models.store import ModelError

__all__ = ["QWEN_LANGUAGES", "LlamaTranslator", "llm_available"]

log = logging.getLogger(__name__)


def llm_available() -> bool:
    """Whether the ``vodscribe[llm]`` extra (llama-cpp-python and the model packages) is installed."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None and bundled_llm.packages_installed()


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vodscribe"


class LlamaTranslator(ChatLanguages):
    """A :class:`~vodscribe.engines.text_translator.TextTranslator` on a local GGUF chat model."""

    def __init__(
        self,
        model: Path | None = None,
        *,
        cache_dir: Path | None = None,
        threads: int = 0,
        gpu_layers: int = -1,
        context: int = 4096,
        languages: frozenset[str] = QWEN_LANGUAGES,
        name: str | None = None,
        before_load: Callable[[], object] | None = None,
    ) -> None:
        self.model = model
        self.cache_dir = cache_dir or _default_cache_dir()
        self.threads = threads
        self.gpu_layers = gpu_layers
        self.context = context
        self.languages = languages
        if model is None:  # the model shipped in packages
            self.name = "llm:qwen2.5-coder-1.5b-instruct"
        else:
            if not model.is_file():
                raise TranslationError(f"LLM model file {model} does not exist")
            self.name = f"llm:{name or model.stem}"
        self._before_load = before_load
        self._llama: Any = None
        self._lock = threading.Lock()
        self._chats = ChatTranslation(self._chat, name=self.name)

    # --- translating ------------------------------------------------------------------------------
    def translate(self, sentences: Sequence[str], source: Language, target: Language) -> list[str]:
        self.require(source, target)
        with self._lock:
            self._load()
            return self._chats.translate(sentences, source, target)

    def _load(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise TranslationError("llama-cpp-python is not installed; install vodscribe[llm]") from exc
            if self._before_load is not None:
                try:
                    self._before_load()  # a pulled model's files are checked against its lock
                except ModelError as exc:
                    raise TranslationError(str(exc)) from exc
            path = bundled_llm.model_path(self.cache_dir) if self.model is None else self.model
            log.info("loading translation LLM %s", path)
            started = time.monotonic()
            self._llama = Llama(
                str(path),
                n_ctx=self.context,
                n_threads=self.threads or os.cpu_count(),  # llama.cpp's own default is half the cores
                n_gpu_layers=self.gpu_layers,
                verbose=False,
            )
            device = "cpu" if self.gpu_layers == 0 else "auto"  # llama.cpp offloads where it can
            metrics.MODEL_LOAD.labels(self.name, device).observe(time.monotonic() - started)
        return self._llama

    def _chat(self, system: str, user: str, max_tokens: int) -> str:
        response = self._llama.create_chat_completion(
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            temperature=0.0,
            top_k=1,
            max_tokens=max_tokens,
        )
        return str(response["choices"][0]["message"]["content"] or "")
