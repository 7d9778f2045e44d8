"""Subtitle translation with a local instruction-tuned LLM through llama.cpp (``vodscribe[llm]``).

The default model is the bundled Qwen2.5-Coder-1.5B-Instruct (see :mod:`bundled_llm`); any chat GGUF
file can be named instead. Sentences go to the model in small numbered batches and come back as
numbered lines (:mod:`vodscribe.engines.chat_translation`,
shared with the OpenAI-compatible backend); the lines an answer misses are redone one by one, so a
translation can never slide onto another sentence's time. Decoding is greedy (temperature 0).
The requests of a round (a text's batches, its redone lines, and those of every other text being
translated at the same time, another target language of the same video say) are decoded together
as parallel sequences of one context (:mod:`vodscribe.engines.parallel_decoding`), so the model's
weights are read once per step for all of them.

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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vodscribe import metrics
from vodscribe.engines import bundled_llm
from vodscribe.engines.chat_translation import ChatLanguages, ChatRequest, ChatTranslation
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
    """A :class:`~vodscribe.engines.text_translator.TextTranslator` on a local GGUF chat model.

    ``parallel``: requests decoded at once; ``context``: tokens each of them may use, its prompt and
    its answer (the KV cache holds ``parallel * context``).
    """

    def __init__(
        self,
        model: Path | None = None,
        *,
        cache_dir: Path | None = None,
        threads: int = 0,
        gpu_layers: int = -1,
        context: int = 2048,
        parallel: int = 4,
        languages: frozenset[str] = QWEN_LANGUAGES,
        name: str | None = None,
        before_load: Callable[[], object] | None = None,
    ) -> None:
        self.model = model
        self.cache_dir = cache_dir or _default_cache_dir()
        self.threads = threads
        self.gpu_layers = gpu_layers
        self.context = context
        self.parallel = max(1, parallel)
        self.languages = languages
        if model is None:  # the model shipped in packages
            self.name = "llm:qwen2.5-coder-1.5b-instruct"
        else:
            if not model.is_file():
                raise TranslationError(f"LLM model file {model} does not exist")
            self.name = f"llm:{name or model.stem}"
        self._before_load = before_load
        self._model: LoadedChatModel | None = None
        self._lock = threading.Lock()
        self._chats = ChatTranslation(chat_many=self._chat_many, name=self.name)

    # --- translating ------------------------------------------------------------------------------
    def translate(
        self,
        sentences: Sequence[str],
        source: Language,
        target: Language,
        glossary: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Safe to call from several threads at once: their requests are decoded together."""
        self.require(source, target)
        return self._chats.translate(sentences, source, target, glossary)

    def _chat_many(self, requests: Sequence[ChatRequest]) -> list[str]:
        return self.loaded().chat(requests)

    def close(self) -> None:
        """Free the model and its context (a later translation loads them again)."""
        with self._lock:
            model, self._model = self._model, None
        if model is not None:
            model.close()

    def loaded(self) -> LoadedChatModel:
        """The model, loaded on first use."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> LoadedChatModel:
        try:
            from llama_cpp import Llama, llama_supports_gpu_offload
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
        threads = self.threads or os.cpu_count() or 1  # llama.cpp's own default is half the cores
        # This context only tokenizes: the decoder below has its own, sized for parallel sequences.
        llama = Llama(
            str(path), n_ctx=256, n_batch=256, n_threads=threads, n_gpu_layers=self.gpu_layers, verbose=False
        )
        loaded = LoadedChatModel(
            llama,
            slots=self.parallel,
            context=self.context,
            threads=threads,
            gpu=self.gpu_layers != 0 and bool(llama_supports_gpu_offload()),
        )
        device = "cpu" if self.gpu_layers == 0 else "auto"  # llama.cpp offloads where it can
        metrics.MODEL_LOAD.labels(self.name, device).observe(time.monotonic() - started)
        return loaded


class LoadedChatModel:
    """A loaded GGUF chat model: its chat template, its tokenizer and its parallel decoder."""

    def __init__(self, llama: Any, *, slots: int, context: int, threads: int, gpu: bool = False) -> None:
        from llama_cpp import llama_chat_format

        from vodscribe.engines.parallel_decoding import ParallelDecoder  # imports llama_cpp

        self.llama = llama  # owns the weights the decoder's context reads
        template = llama.metadata.get("tokenizer.chat_template")
        if template:  # what create_chat_completion would use for this model
            eos, bos = llama.token_eos(), llama.token_bos()
            self._format: Any = llama_chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
                bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
                stop_token_ids=[eos],
            )
        else:  # llama-cpp-python's own fallback
            self._format = llama_chat_format.format_llama2
        self.decoder = ParallelDecoder(
            self.model, slots=slots, context=slots * context, threads=threads, flash_attention=gpu
        )

    def chat(self, requests: Sequence[ChatRequest]) -> list[str]:
        prompts = [self.prompt(r.system, r.user) for r in requests]
        answers = self.decoder.generate(prompts, [r.max_tokens for r in requests])
        return [self.llama.detokenize(tokens).decode("utf-8", errors="ignore") for tokens in answers]

    @property
    def model(self) -> Any:
        """The ``llama_model_p`` (another decoder may be made on it, as the benchmark does)."""
        return self.llama._model.model

    def close(self) -> None:
        self.decoder.close()
        self.llama.close()

    def prompt(self, system: str, user: str) -> list[int]:
        """The tokens create_chat_completion would feed the model for these two messages."""
        formatted = self._format(
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}]
        )
        return list(
            self.llama.tokenize(
                formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
            )
        )
