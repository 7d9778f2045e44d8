"""Subtitle translation with a local instruction-tuned LLM through llama.cpp (``vodscribe[llm]``).

The default model is the bundled Qwen2.5-Coder-1.5B-Instruct (see :mod:`bundled_llm`); any chat GGUF
file can be named instead. Sentences go to the model in small numbered batches, one sentence per
line, and must come back as the same number of numbered lines; a batch whose answer does not line up
is redone sentence by sentence, so a translation can never slide onto another sentence's time.
Decoding is greedy (temperature 0), so the same input gives the same subtitles.

The languages offered are the ones Qwen2.5 was trained for (its model card's list), limited to those
vodscribe knows; quality is well below a dedicated NMT model (see ``bench/README.md``), which is why
NMT comes first in the default backend order.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vodscribe.engines import bundled_llm
from vodscribe.engines.text_translator import TranslationError
from vodscribe.languages import Language

log = logging.getLogger(__name__)

#: Qwen2.5's languages (its model card: 29+), as ISO 639-2/B codes vodscribe knows.
QWEN_LANGUAGES = frozenset(
    [
        "eng",
        "chi",
        "fre",
        "spa",
        "por",
        "ger",
        "ita",
        "rus",
        "jpn",
        "kor",
        "vie",
        "tha",
        "ara",
        "dut",
        "pol",
        "cze",
        "tur",
        "per",
        "heb",
        "ind",
        "may",
        "hin",
        "ben",
        "urd",
        "tgl",
        "khm",
        "lao",
        "bur",
    ]
)
#: Sentences per request, and a cap on their total length (characters).
BATCH_SENTENCES = 8
BATCH_CHARS = 800
_NUMBERED = re.compile(r"^\s*(\d+)\s*[.):：、]\s*(.*)$")


def llm_available() -> bool:
    """Whether the ``vodscribe[llm]`` extra (llama-cpp-python and the model packages) is installed."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None and bundled_llm.packages_installed()


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vodscribe"


class LlamaTranslator:
    """A :class:`~vodscribe.engines.text_translator.TextTranslator` on a local GGUF chat model."""

    def __init__(
        self,
        model: str = "bundled",
        *,
        cache_dir: Path | None = None,
        threads: int = 0,
        gpu_layers: int = -1,
        context: int = 4096,
        languages: frozenset[str] = QWEN_LANGUAGES,
    ) -> None:
        self.model = model
        self.cache_dir = cache_dir or _default_cache_dir()
        self.threads = threads
        self.gpu_layers = gpu_layers
        self.context = context
        self.languages = languages
        if model == "bundled":
            self.name = "llm:qwen2.5-coder-1.5b-instruct"
        else:
            if not Path(model).is_file():
                raise TranslationError(f"LLM model file {model} does not exist")
            self.name = f"llm:{Path(model).stem}"
        self._llama: Any = None
        self._lock = threading.Lock()

    # --- what it offers ---------------------------------------------------------------------------
    def supports(self, source: Language, target: Language) -> bool:
        return source is not target and source.b in self.languages and target.b in self.languages

    def targets(self) -> frozenset[str]:
        return self.languages

    # --- translating ------------------------------------------------------------------------------
    def translate(self, sentences: Sequence[str], source: Language, target: Language) -> list[str]:
        if not self.supports(source, target):
            raise TranslationError(f"{self.name} cannot translate {source.name} to {target.name}")
        out = [""] * len(sentences)
        todo = [i for i, s in enumerate(sentences) if s.strip()]
        with self._lock:
            llama = self._load()
            for batch in _batches(todo, sentences):
                texts = [" ".join(sentences[i].split()) for i in batch]
                answer = self._ask(llama, texts, source, target) if len(texts) > 1 else None
                if answer is None:
                    answer = [self._ask_one(llama, text, source, target) for text in texts]
                for i, text in zip(batch, answer, strict=True):
                    out[i] = text
        return out

    def _load(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise TranslationError("llama-cpp-python is not installed; install vodscribe[llm]") from exc
            path = bundled_llm.model_path(self.cache_dir) if self.model == "bundled" else Path(self.model)
            log.info("loading translation LLM %s", path)
            self._llama = Llama(
                str(path),
                n_ctx=self.context,
                n_threads=self.threads or os.cpu_count(),  # llama.cpp's own default is half the cores
                n_gpu_layers=self.gpu_layers,
                verbose=False,
            )
        return self._llama

    def _ask(self, llama: Any, texts: list[str], source: Language, target: Language) -> list[str] | None:
        """One numbered batch; None when the answer does not have exactly one line per sentence."""
        prompt = "\n".join(f"{n}. {text}" for n, text in enumerate(texts, 1))
        reply = self._chat(llama, _system(source, target, len(texts)), prompt, _budget(prompt))
        found: dict[int, str] = {}
        for line in reply.splitlines():
            match = _NUMBERED.match(line)
            if match and match.group(2).strip():
                found.setdefault(int(match.group(1)), _clean(match.group(2)))
        if sorted(found) != list(range(1, len(texts) + 1)):
            log.info("LLM answered %d of %d numbered lines; retrying one by one", len(found), len(texts))
            return None
        return [found[n] for n in range(1, len(texts) + 1)]

    def _ask_one(self, llama: Any, text: str, source: Language, target: Language) -> str:
        reply = self._chat(llama, _system(source, target, 0), text, _budget(text))
        lines = [line for line in reply.splitlines() if line.strip()]
        if not lines:
            return text  # better the original line than an empty subtitle
        match = _NUMBERED.match(lines[0])
        if match and match.group(2).strip() and not _NUMBERED.match(text):  # it numbered its answer
            return _clean(match.group(2))
        return _clean(" ".join(lines))

    def _chat(self, llama: Any, system: str, user: str, max_tokens: int) -> str:
        response = llama.create_chat_completion(
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            temperature=0.0,
            top_k=1,
            max_tokens=max_tokens,
        )
        return str(response["choices"][0]["message"]["content"] or "")


def _system(source: Language, target: Language, lines: int) -> str:
    task = (
        f"You are a professional subtitle translator. Translate from {source.name} into {target.name}. "
        "Keep names and numbers, keep the meaning and the tone of speech, and write natural "
        f"{target.name}."
    )
    if lines:
        return (
            f"{task} The user sends {lines} numbered subtitle lines. Answer with exactly {lines} "
            "numbered lines, the translation of each line on the line with its number, and nothing else."
        )
    return f"{task} Answer with the translation only, on one line, and nothing else."


def _budget(text: str) -> int:
    return 64 + 3 * len(text) // 2


def _clean(text: str) -> str:
    text = " ".join(text.split())
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'" and text.count(text[0]) == 2:
        text = text[1:-1]
    return text


def _batches(indexes: Sequence[int], sentences: Sequence[str]) -> list[list[int]]:
    batches: list[list[int]] = []
    size = 0
    for i in indexes:
        length = len(sentences[i])
        if batches and len(batches[-1]) < BATCH_SENTENCES and size + length <= BATCH_CHARS:
            batches[-1].append(i)
            size += length
        else:
            batches.append([i])
            size = length
    return batches
