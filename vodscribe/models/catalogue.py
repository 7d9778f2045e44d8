"""The catalogue of known-good models an operator can pull by name.

Speech (``asr``) entries are faster-whisper's own model list (``faster_whisper/utils.py``:
``_MODELS``), the same names mapped to the same CTranslate2 repositories; a test holds the two
together. Translation (``nmt``) entries are the original checkpoints of their authors, converted to
CTranslate2 at pull time with CTranslate2's own converter (``vodscribe[convert]``), since no
conversion is published by the authors themselves. Chat (``llm``) entries are GGUF files for
llama.cpp, split files included.

``size_gb`` is the download as the hub lists it (approximate; ``models list`` shows the real size
once pulled). ``memory_gb`` is what running the model needs: for Whisper, OpenAI's published
"required VRAM" (openai/whisper README; faster-whisper needs less: 4.5 GB for large-v2 in float16
by its own README); for the others, an estimate: the weights in the precision they run at plus
working memory (beam search, a 4096-token context). ``revision`` pins a commit where one is known;
otherwise the first pull pins the commit it got, in the lock file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

Kind = Literal["asr", "nmt", "llm"]
KINDS: tuple[Kind, ...] = ("asr", "nmt", "llm")

#: The setting value that names the models shipped in packages (Whisper base, the [llm] extra's chat
#: model); read by :func:`is_bundled` only.
BUNDLED = "bundled"


def is_bundled(value: str) -> bool:
    """Whether a model setting's value names the model shipped in packages."""
    return value.strip() == BUNDLED


#: Qwen2.5's languages (its model card: 29+), as ISO 639-2/B codes vodscribe knows.
# fmt: off
QWEN_LANGUAGES = frozenset([
    "eng", "chi", "fre", "spa", "por", "ger", "ita", "rus", "jpn", "kor", "vie", "tha", "ara", "dut",
    "pol", "cze", "tur", "per", "heb", "ind", "may", "hin", "ben", "urd", "tgl", "khm", "lao", "bur",
])
#: Aya Expanse's 23 languages (its model card), as ISO 639-2/B codes.
AYA_LANGUAGES = frozenset([
    "ara", "chi", "cze", "dut", "eng", "fre", "ger", "gre", "heb", "hin", "ind", "ita", "jpn", "kor",
    "per", "pol", "por", "rum", "rus", "spa", "tur", "ukr", "vie",
])
# fmt: on

#: Files faster-whisper fetches for a CTranslate2 Whisper model (``download_model``'s patterns).
WHISPER_FILES = ("config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*")
#: Files of a transformers translation checkpoint that the converter reads (weights, config,
#: tokenizer); one set serves M2M100, NLLB-200 and Marian (OPUS-MT).
CHECKPOINT_FILES = (
    "config.json",
    "generation_config.json",
    "pytorch_model.bin",
    "model.safetensors",
    "*.spm",
    "sentencepiece.bpe.model",
    "special_tokens_map.json",
    "tokenizer_config.json",
    "tokenizer.json",
    "vocab.json",
)


@dataclass(frozen=True, slots=True)
class CatalogueModel:
    """One model an operator can pull by ``name``."""

    name: str
    kind: Kind
    repo: str
    """Source repository on the hub."""
    files: tuple[str, ...]
    """Glob patterns of the files to fetch from ``repo``."""
    licence: str
    commercial: bool
    """False for weights whose licence forbids commercial use (NLLB-200's CC-BY-NC-4.0)."""
    languages: str
    """What it speaks, for people (``99``, ``English``, ``202``)."""
    size_gb: float
    memory_gb: float
    description: str
    revision: str | None = None
    convert: bool = False
    """A transformers checkpoint converted to CTranslate2 (float16) at pull time."""
    aliases: tuple[str, ...] = ()
    chat_languages: frozenset[str] = field(default_factory=frozenset)
    """For ``llm`` entries: the languages it translates between (ISO 639-2/B)."""

    @property
    def large(self) -> bool:
        """Worth a GPU: runs in CUDA float16 when one is present (``auto`` device)."""
        return self.memory_gb >= 4


def _whisper(
    name: str,
    repo: str,
    size_gb: float,
    memory_gb: float,
    description: str,
    *,
    english: bool = False,
    aliases: tuple[str, ...] = (),
) -> CatalogueModel:
    return CatalogueModel(
        name=name,
        kind="asr",
        repo=repo,
        files=WHISPER_FILES,
        licence="MIT",
        commercial=True,
        languages="English" if english else "99",
        size_gb=size_gb,
        memory_gb=memory_gb,
        description=description,
        aliases=aliases,
    )


_SYSTRAN = "Systran/faster-whisper-"
# fmt: off
SPEECH: tuple[CatalogueModel, ...] = (
    _whisper("tiny", _SYSTRAN + "tiny", 0.08, 1, "Whisper tiny (39M): fastest, least accurate"),
    _whisper("tiny.en", _SYSTRAN + "tiny.en", 0.08, 1, "Whisper tiny, English only", english=True),
    _whisper("base", _SYSTRAN + "base", 0.15, 1, "Whisper base (74M): the bundled default"),
    _whisper("base.en", _SYSTRAN + "base.en", 0.15, 1, "Whisper base, English only", english=True),
    _whisper("small", _SYSTRAN + "small", 0.48, 2, "Whisper small (244M)"),
    _whisper("small.en", _SYSTRAN + "small.en", 0.48, 2, "Whisper small, English only", english=True),
    _whisper("medium", _SYSTRAN + "medium", 1.5, 5, "Whisper medium (769M)"),
    _whisper("medium.en", _SYSTRAN + "medium.en", 1.5, 5, "Whisper medium, English only", english=True),
    _whisper("large-v1", _SYSTRAN + "large-v1", 3.1, 10, "Whisper large-v1 (1550M)"),
    _whisper("large-v2", _SYSTRAN + "large-v2", 3.1, 10, "Whisper large-v2 (1550M)"),
    _whisper("large-v3", _SYSTRAN + "large-v3", 3.1, 10, "Whisper large-v3 (1550M): most accurate",
             aliases=("large",)),
    _whisper("large-v3-turbo", "mobiuslabsgmbh/faster-whisper-large-v3-turbo", 1.6, 6,
             "Whisper large-v3-turbo (809M): large-v3's encoder, 4 decoder layers; ~8x large's speed",
             aliases=("turbo",)),
    _whisper("distil-large-v2", "Systran/faster-distil-whisper-large-v2", 1.5, 6,
             "Distil-Whisper large-v2 (756M), English only", english=True),
    _whisper("distil-large-v3", "Systran/faster-distil-whisper-large-v3", 1.5, 6,
             "Distil-Whisper large-v3 (756M), English only", english=True),
    _whisper("distil-large-v3.5", "distil-whisper/distil-large-v3.5-ct2", 1.5, 6,
             "Distil-Whisper large-v3.5 (756M), English only", english=True),
    _whisper("distil-medium.en", "Systran/faster-distil-whisper-medium.en", 0.79, 3,
             "Distil-Whisper medium (394M), English only", english=True),
    _whisper("distil-small.en", "Systran/faster-distil-whisper-small.en", 0.33, 2,
             "Distil-Whisper small (166M), English only", english=True),
)
# fmt: on


def _checkpoint(
    name: str,
    repo: str,
    licence: str,
    commercial: bool,
    languages: str,
    size_gb: float,
    memory_gb: float,
    description: str,
) -> CatalogueModel:
    return CatalogueModel(
        name=name,
        kind="nmt",
        repo=repo,
        files=CHECKPOINT_FILES,
        licence=licence,
        commercial=commercial,
        languages=languages,
        size_gb=size_gb,
        memory_gb=memory_gb,
        description=description,
        convert=True,
    )


# fmt: off
TRANSLATION: tuple[CatalogueModel, ...] = (
    _checkpoint("m2m100-418m", "facebook/m2m100_418M", "MIT", True, "100", 1.9, 2,
                "M2M100 418M: any of 100 languages to any other"),
    _checkpoint("m2m100-1.2b", "facebook/m2m100_1.2B", "MIT", True, "100", 5.0, 4,
                "M2M100 1.2B: any of 100 languages to any other"),
    _checkpoint("nllb-200-distilled-600m", "facebook/nllb-200-distilled-600M", "CC-BY-NC-4.0", False, "202",
                2.5, 2, "NLLB-200 distilled 600M: 200 languages, strong on low-resource ones"),
    _checkpoint("nllb-200-distilled-1.3b", "facebook/nllb-200-distilled-1.3B", "CC-BY-NC-4.0", False, "202",
                5.5, 4, "NLLB-200 distilled 1.3B: 200 languages"),
    _checkpoint("nllb-200-3.3b", "facebook/nllb-200-3.3B", "CC-BY-NC-4.0", False, "202", 17.6, 9,
                "NLLB-200 3.3B: 200 languages, the most accurate NLLB"),
)
# fmt: on

#: OPUS-MT pairs are a family, not a list: ``opus-mt-en-de`` is ``Helsinki-NLP/opus-mt-en-de``.
_OPUS_MT = re.compile(r"opus-mt-(?:tc-big-)?[a-z]{2,3}(?:_[a-z]+)?-[a-z]{2,3}(?:_[a-z]+)?")
OPUS_MT_EXAMPLE = _checkpoint(
    "opus-mt-en-de",
    "Helsinki-NLP/opus-mt-en-de",
    "CC-BY-4.0",
    True,
    "1 pair",
    0.3,
    1,
    "OPUS-MT (Marian): one language pair, small and fast; any opus-mt-SRC-TGT of Helsinki-NLP",
)


def _gguf(
    name: str,
    repo: str,
    pattern: str,
    licence: str,
    commercial: bool,
    languages: frozenset[str],
    size_gb: float,
    memory_gb: float,
    description: str,
) -> CatalogueModel:
    return CatalogueModel(
        name=name,
        kind="llm",
        repo=repo,
        files=(pattern,),
        licence=licence,
        commercial=commercial,
        languages=str(len(languages)),
        size_gb=size_gb,
        memory_gb=memory_gb,
        description=description,
        chat_languages=languages,
    )


# fmt: off
CHAT: tuple[CatalogueModel, ...] = (
    _gguf("qwen2.5-1.5b-instruct", "Qwen/Qwen2.5-1.5B-Instruct-GGUF", "qwen2.5-1.5b-instruct-q4_k_m.gguf",
          "Apache-2.0", True, QWEN_LANGUAGES, 1.1, 2, "Qwen2.5 1.5B Instruct, Q4_K_M"),
    _gguf("qwen2.5-7b-instruct", "Qwen/Qwen2.5-7B-Instruct-GGUF", "qwen2.5-7b-instruct-q4_k_m*.gguf",
          "Apache-2.0", True, QWEN_LANGUAGES, 4.7, 6, "Qwen2.5 7B Instruct, Q4_K_M (two split files)"),
    _gguf("qwen2.5-14b-instruct", "Qwen/Qwen2.5-14B-Instruct-GGUF", "qwen2.5-14b-instruct-q4_k_m*.gguf",
          "Apache-2.0", True, QWEN_LANGUAGES, 9.0, 11, "Qwen2.5 14B Instruct, Q4_K_M (split files)"),
    _gguf("aya-expanse-8b", "bartowski/aya-expanse-8b-GGUF", "aya-expanse-8b-Q4_K_M.gguf",
          "CC-BY-NC-4.0", False, AYA_LANGUAGES, 5.1, 7,
          "Cohere Aya Expanse 8B, Q4_K_M (bartowski's quantisation): made for translation, 23 languages"),
)
# fmt: on

CATALOGUE: tuple[CatalogueModel, ...] = SPEECH + TRANSLATION + CHAT


class UnknownModelError(LookupError):
    """A name that is not in the catalogue."""

    def __init__(self, name: str, kind: Kind | None = None) -> None:
        self.name = name
        self.kind = kind
        names = ", ".join(m.name for m in CATALOGUE if kind is None or m.kind == kind)
        extra = " or opus-mt-SRC-TGT" if kind in (None, "nmt") else ""
        super().__init__(f"Unknown model {name!r}; the catalogue has: {names}{extra} (vodscribe models list)")


def find(name: str, kind: Kind | None = None) -> CatalogueModel:
    """The catalogue entry called ``name`` (or one of its aliases), of ``kind`` if given."""
    wanted = name.strip().lower()
    for model in CATALOGUE:
        if (kind is None or model.kind == kind) and wanted in (model.name.lower(), *model.aliases):
            return model
    if (kind in (None, "nmt")) and _OPUS_MT.fullmatch(wanted):
        return replace(
            OPUS_MT_EXAMPLE, name=wanted, repo=f"Helsinki-NLP/{wanted}", description="OPUS-MT pair"
        )
    raise UnknownModelError(name, kind)


def is_name(value: str) -> bool:
    """Whether a setting's value reads as a model name rather than a path (no separator, no dot
    or tilde first); ``bundled`` and the empty string are neither."""
    value = value.strip()
    if not value or is_bundled(value) or value.startswith((".", "~", "/")):
        return False
    return "/" not in value and "\\" not in value
