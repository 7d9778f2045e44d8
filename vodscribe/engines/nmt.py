"""CTranslate2 neural machine translation over operator-supplied converted model directories.

A model directory is what ``ct2-transformers-converter`` (or ``ct2-opus-mt-converter``) writes:
``model.bin``, ``config.json``, the vocabulary (``shared_vocabulary.json``, or
``source_vocabulary.*`` + ``target_vocabulary.*``; ``.txt`` from older converters), plus the
sentencepiece tokenizer copied next to them (``--copy_files``). Four model families are recognised
from the vocabulary's language tokens:

* **NLLB-200**: ``eng_Latn``, ``deu_Latn``, ``zho_Hans``... The source is ``[src_lang] + pieces +
  [</s>]`` and the decoder is forced to start with the target language token.
* **M2M100** (and SMaLL-100): ``__en__``, ``__de__``... Same scheme as NLLB.
* **MADLAD-400** (T5): ``<2de>``, ``<2en>``... The *target* token leads the source; no prefix.
* **OPUS-MT** (Marian): ``source.spm`` + ``target.spm``. Multi-target models have ``>>deu<<``-style
  tokens, put at the head of the source; single-pair models take their languages from the ``pair``
  argument or from the directory name (``opus-mt-en-de``, ``opus-mt-tc-big-en-fr``).

Building a :class:`CTranslate2Translator` reads only that metadata, so the API server can list the
pairs a deployment offers; the weights and tokenizers load on the first :meth:`translate` call.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import ctranslate2

from vodscribe.engines.text_translator import TranslationError
from vodscribe.engines.whisper import resolve_compute_type, resolve_device
from vodscribe.languages import LANGUAGES, Language, UnknownLanguageError, resolve
from vodscribe.models.store import ModelError

if TYPE_CHECKING:
    from sentencepiece import SentencePieceProcessor

__all__ = ["FAMILIES", "CTranslate2Translator", "Family", "load_translators"]

log = logging.getLogger(__name__)

Family = Literal["nllb", "m2m100", "madlad", "opus-mt"]
FAMILIES: tuple[Family, ...] = ("nllb", "m2m100", "madlad", "opus-mt")

#: Sentencepiece model file names, in the order they are looked for (source side, target side).
SOURCE_TOKENIZERS = ("source.spm", "sentencepiece.bpe.model", "sentencepiece.model", "spiece.model")
TARGET_TOKENIZERS = (
    "target.spm",
    "sentencepiece.bpe.model",
    "sentencepiece.model",
    "spiece.model",
    "source.spm",
)

#: Source pieces kept per sentence (longer input is cut; subtitle sentences are far shorter).
MAX_SOURCE_PIECES = 500
#: Most tokens a translation may have (besides the target prefix).
MAX_DECODING_LENGTH = 512

#: How each family writes a language token: a regex capturing the code, and the token for a code.
_TOKEN_PATTERNS: dict[Family, tuple[re.Pattern[str], str]] = {
    "nllb": (re.compile(r"([a-z]{3}_[A-Z][a-z]{3})"), "{}"),
    "m2m100": (re.compile(r"__([a-z]{2,3})__"), "__{}__"),
    "madlad": (re.compile(r"<2([A-Za-z]{2,3}(?:[_-][A-Za-z0-9]+)*)>"), "<2{}>"),
    "opus-mt": (re.compile(r">>([A-Za-z]{2,3}(?:_[A-Za-z0-9]+)*)<<"), ">>{}<<"),
}

# NLLB / FLORES-200 codes for languages whose 639-2/T code is a macrolanguage or has several
# scripts (keys are 639-2/T codes; the first code present in the vocabulary wins). Checked against
# the real NLLB-200 token list: every vodscribe language NLLB has maps (tests/test_nmt.py).
_NLLB_OVERRIDES: dict[str, tuple[str, ...]] = {
    "aka": ("aka_Latn", "twi_Latn"),
    "ara": ("arb_Arab",),
    "aze": ("azj_Latn", "azb_Arab"),
    "din": ("dik_Latn",),
    "est": ("est_Latn", "ekk_Latn"),
    "fas": ("pes_Arab", "prs_Arab"),
    "ful": ("fuv_Latn",),
    "grn": ("gug_Latn",),
    "hbs": ("hrv_Latn", "srp_Cyrl", "bos_Latn"),
    "kas": ("kas_Arab", "kas_Deva"),
    "kau": ("knc_Latn", "knc_Arab"),
    "kur": ("ckb_Arab", "kmr_Latn"),
    "lav": ("lvs_Latn",),
    "mlg": ("plt_Latn",),
    "mon": ("khk_Cyrl",),
    "msa": ("zsm_Latn",),
    "nep": ("npi_Deva",),
    "nor": ("nob_Latn",),
    "ori": ("ory_Orya",),
    "orm": ("gaz_Latn",),
    "pus": ("pbt_Arab",),
    "que": ("quy_Latn",),
    "sqi": ("als_Latn",),
    "srp": ("srp_Cyrl",),
    "swa": ("swh_Latn",),
    "uzb": ("uzn_Latn",),
    "yid": ("ydd_Hebr",),
    "yue": ("yue_Hant",),
    "zho": ("zho_Hans",),
}
# Other codes a language goes by in M2M100 / MADLAD / OPUS-MT vocabularies (keys: 639-2/T codes).
_CODE_ALIASES: dict[str, tuple[str, ...]] = {
    "heb": ("iw",),
    "ind": ("in",),
    "jav": ("jw",),
    "nor": ("nb", "nob"),
    "yid": ("ji",),
    "zho": ("cmn_Hans", "cmn", "zh_cn"),
}
# OPUS-MT language groups (``opus-mt-mul-en``, ``opus-mt-tc-big-gmq-en``...): many languages on that
# side. Only consulted for codes :func:`vodscribe.languages.resolve` does not know.
_GROUP_CODES = (
    "mul aav afa alv art bat ber bnt ccs cel celtic cpe cpf cpp cus dra esx euq fiu gem gmq gmw grk hbs "
    "iir inc ine ira itc map mkh nic nordic north_eu phi poz pqe roa romance sal scandinavia sem sit sla "
    "tai trk tut urj zle zls zlw"
)
_GROUPS = frozenset(_GROUP_CODES.split())

#: A BCP-47 script or region subtag (``Hans``, ``BR``, ``419``), as it appears after a language code.
_SUBTAG = re.compile(r"[A-Z]{2}|[A-Z][a-z]{3}|\d{3}")

_Side = Language | None
"""One side of a language pair: a language, or ``None`` for "many" (``mul`` or a group)."""


class CTranslate2Translator:
    """A CTranslate2 translation model directory (NLLB-200, M2M100, MADLAD-400 or OPUS-MT).

    Construction reads only small metadata (``config.json``, the vocabulary, which tokenizer files
    exist) and raises :class:`TranslationError` for a directory it cannot use. The model and the
    sentencepiece tokenizers load, once and under a lock, on the first :meth:`translate` call.

    ``device`` / ``compute_type``: ``"auto"`` is CUDA + float16 when a GPU is there, else CPU + int8
    (as for Whisper). ``cpu_threads``: CTranslate2 intra-op threads (0: its default). ``beam_size``
    and ``batch_size``: beam search width and sentences per ``translate_batch`` call. ``pair``
    (``"en-de"``, ``"mul->en"``...): the languages of a single-pair OPUS-MT model whose directory name
    does not tell them; for a multilingual model it narrows the pairs served. ``before_load``
    runs right before the weights load (the lock-file check of a pulled model).
    """

    def __init__(
        self,
        model_dir: Path | str,
        *,
        device: str = "auto",
        compute_type: str = "auto",
        cpu_threads: int = 0,
        beam_size: int = 4,
        batch_size: int = 16,
        pair: str | None = None,
        repetition_penalty: float = 1.0,
        before_load: Callable[[], object] | None = None,
    ) -> None:
        self.model_dir = Path(model_dir).expanduser()
        self._dir_name = Path(os.path.abspath(self.model_dir)).name  # a symlink keeps its own name
        self.name = f"nmt:{self._dir_name}"
        self.device = resolve_device(device)
        self.compute_type = resolve_compute_type(compute_type, self.device)
        self.cpu_threads = cpu_threads
        self.beam_size = max(1, beam_size)
        self.batch_size = max(1, batch_size)
        self.repetition_penalty = repetition_penalty
        self._before_load = before_load

        if not self.model_dir.is_dir():
            raise TranslationError(f"NMT model directory {self.model_dir} does not exist")
        if not (self.model_dir / "model.bin").is_file():
            raise TranslationError(
                f"NMT model directory {self.model_dir} has no model.bin: convert the model to "
                "CTranslate2 format first (ct2-transformers-converter / ct2-opus-mt-converter)"
            )
        self._source_spm = _first_file(self.model_dir, SOURCE_TOKENIZERS)
        self._target_spm = _first_file(self.model_dir, TARGET_TOKENIZERS)
        if self._source_spm is None or self._target_spm is None:
            raise TranslationError(
                f"NMT model directory {self.model_dir} has no sentencepiece tokenizer (one of "
                f"{', '.join(SOURCE_TOKENIZERS)}): copy it next to model.bin (converter --copy_files)"
            )
        config = _read_config(self.model_dir)
        self.eos_token = str(config.get("eos_token") or "</s>")
        self._add_eos = not config.get("add_source_eos", False)
        source_vocab, target_vocab = _read_vocabularies(self.model_dir)

        family = _detect_family(source_vocab | target_vocab, self.model_dir)
        if family is None:
            raise TranslationError(
                f"NMT model directory {self.model_dir} has an unknown layout: no NLLB (eng_Latn), "
                "M2M100 (__en__) or MADLAD (<2en>) language tokens, and no OPUS-MT source.spm/target.spm"
            )
        self.family: Family = family
        self._specials = frozenset(
            {"<s>", "</s>", "<unk>", "<pad>", "<mask>", self.eos_token}
            | {
                str(config[key])
                for key in ("bos_token", "unk_token", "decoder_start_token")
                if config.get(key)
            }
        )

        # Language tokens: Language.b -> the token naming it on the source / target side.
        self._source_tags: dict[str, str] = {}
        self._target_tags: dict[str, str] = {}
        self._any_source = False
        if family in ("nllb", "m2m100"):
            self._source_tags = _language_tokens(family, source_vocab)
            self._target_tags = _language_tokens(family, target_vocab)
        elif family == "madlad":  # the target's token goes on the source side; any listed source
            self._target_tags = _language_tokens(family, source_vocab)
            self._source_tags = dict(self._target_tags)
        else:
            self._init_opus_mt(source_vocab, pair)
        if pair is not None and family != "opus-mt":
            self._restrict(*_parse_pair(pair))

        self._sources = frozenset(self._source_tags)
        self._targets = frozenset(self._target_tags)
        self._lock = threading.Lock()
        self._translator: ctranslate2.Translator | None = None
        self._sp: tuple[SentencePieceProcessor, SentencePieceProcessor] | None = None
        log.info(
            "NMT model %s: %s, %d target language(s)%s",
            self.model_dir,
            self.family,
            len(self.targets()),
            "" if self._any_source else f" from {len(self._sources)} source language(s)",
        )

    def __repr__(self) -> str:
        return f"CTranslate2Translator({str(self.model_dir)!r}, family={self.family!r})"

    # --- languages ------------------------------------------------------------------------------------
    def _init_opus_mt(self, source_vocab: frozenset[str], pair: str | None) -> None:
        """Languages of an OPUS-MT model: from ``>>xx<<`` tokens, ``pair`` or the directory name."""
        tagged = _language_tokens("opus-mt", source_vocab)
        named = _parse_pair(pair) if pair is not None else _pair_from_dir_name(self._dir_name)
        if named is None and not tagged:
            raise TranslationError(
                f"Cannot tell the language pair of OPUS-MT model {self.model_dir}: name the "
                "directory opus-mt-<source>-<target> (e.g. opus-mt-en-de) or configure its pair"
            )
        source, target = named or (None, None)
        if tagged:  # multi-target: the >>xx<< tokens say the targets; a configured pair may narrow them
            if pair is not None and target is not None:
                tagged = {k: v for k, v in tagged.items() if k == target.b}
            self._target_tags = tagged
        elif target is None:
            raise TranslationError(
                f"OPUS-MT model {self.model_dir} has no >>xx<< target language tokens, so its "
                "target must be one language, not a group"
            )
        else:
            self._target_tags = {target.b: ""}
        self._any_source = source is None
        self._source_tags = {} if source is None else {source.b: ""}

    def _restrict(self, source: _Side, target: _Side) -> None:
        """Narrow a multilingual model to the configured ``pair``."""
        if source is not None:
            self._source_tags = {k: v for k, v in self._source_tags.items() if k == source.b}
        if target is not None:
            self._target_tags = {k: v for k, v in self._target_tags.items() if k == target.b}

    def supports(self, source: Language, target: Language) -> bool:
        """Whether ``source`` -> ``target`` is a pair this model translates (a language into itself
        is not: there is nothing to translate)."""
        if source == target or target.b not in self._targets:
            return False
        return self._any_source or source.b in self._sources

    def targets(self) -> frozenset[str]:
        """ISO 639-2/B codes of every language this model translates into (from some source)."""
        if self._any_source:
            return self._targets
        return frozenset(t for t in self._targets if self._sources - {t})

    def sources(self) -> frozenset[str] | None:
        """ISO 639-2/B codes of the source languages; ``None`` when any source is accepted."""
        return None if self._any_source else self._sources

    def source_prefix(self, source: Language, target: Language) -> list[str]:
        """Tokens put before the source pieces (the source language, or the target for MADLAD and
        multi-target OPUS-MT)."""
        if self.family in ("nllb", "m2m100"):
            return [self._source_tags[source.b]]
        tag = self._target_tags[target.b]
        return [tag] if tag else []

    def target_prefix(self, target: Language) -> list[str]:
        """Tokens the decoder is forced to start with (NLLB and M2M100: the target language)."""
        if self.family in ("nllb", "m2m100"):
            return [self._target_tags[target.b]]
        return []

    def _check_pair(self, source: Language, target: Language) -> None:
        if not self.supports(source, target):
            raise TranslationError(
                f"{self.name} cannot translate {source.name} ({source.b}) into {target.name} ({target.b})"
            )

    # --- loading --------------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        """Whether the model weights are loaded (after the first :meth:`translate`)."""
        return self._translator is not None

    def _tokenizers(self) -> tuple[SentencePieceProcessor, SentencePieceProcessor]:
        with self._lock:
            if self._sp is None:
                try:
                    from sentencepiece import SentencePieceProcessor
                except ImportError as exc:  # pragma: no cover - a dependency of vodscribe
                    raise TranslationError("NMT translation needs the sentencepiece package") from exc
                assert self._source_spm is not None and self._target_spm is not None
                try:
                    source = SentencePieceProcessor(model_file=str(self._source_spm))
                    target = (
                        source
                        if self._target_spm == self._source_spm
                        else SentencePieceProcessor(model_file=str(self._target_spm))
                    )
                except (OSError, RuntimeError) as exc:
                    raise TranslationError(f"{self.name}: cannot load its tokenizer: {exc}") from exc
                self._sp = (source, target)
            return self._sp

    def _model(self) -> ctranslate2.Translator:
        with self._lock:
            if self._translator is None:
                if self._before_load is not None:
                    try:
                        self._before_load()  # a pulled model's files are checked against its lock
                    except ModelError as exc:
                        raise TranslationError(str(exc)) from exc
                log.info("Loading NMT model %s (%s, %s)", self.model_dir, self.device, self.compute_type)
                try:
                    self._translator = ctranslate2.Translator(
                        str(self.model_dir),
                        device=self.device,
                        compute_type=self.compute_type,
                        intra_threads=self.cpu_threads,
                    )
                except (RuntimeError, ValueError, OSError) as exc:
                    raise TranslationError(f"{self.name}: cannot load the model: {exc}") from exc
            return self._translator

    # --- translation ----------------------------------------------------------------------------------
    def encode(self, sentence: str, source: Language, target: Language) -> list[str]:
        """The source tokens the model gets for ``sentence`` (loads the tokenizer, not the model)."""
        self._check_pair(source, target)
        return self._encode(self._tokenizers()[0], sentence, source, target)

    def _encode(
        self, sp: SentencePieceProcessor, sentence: str, source: Language, target: Language
    ) -> list[str]:
        pieces = sp.encode(" ".join(sentence.split()), out_type=str)[:MAX_SOURCE_PIECES]
        return [*self.source_prefix(source, target), *pieces, *([self.eos_token] if self._add_eos else [])]

    def translate_tokens(
        self, sentences: Sequence[str], source: Language, target: Language
    ) -> list[list[str]]:
        """Raw output tokens (target prefix included) for each sentence; ``[]`` for a blank one."""
        self._check_pair(source, target)
        out: list[list[str]] = [[] for _ in sentences]
        if not any(s.strip() for s in sentences):
            return out
        sp_source, _ = self._tokenizers()
        translator = self._model()
        jobs = [(i, self._encode(sp_source, s, source, target)) for i, s in enumerate(sentences) if s.strip()]
        jobs.sort(key=lambda job: len(job[1]))  # similar lengths together: less padding
        prefix = self.target_prefix(target)
        for start in range(0, len(jobs), self.batch_size):
            batch = jobs[start : start + self.batch_size]
            longest = max(len(tokens) for _, tokens in batch)
            try:
                results = translator.translate_batch(
                    [tokens for _, tokens in batch],
                    target_prefix=[prefix] * len(batch) if prefix else None,
                    beam_size=self.beam_size,
                    max_decoding_length=len(prefix) + min(MAX_DECODING_LENGTH, 3 * longest + 10),
                    min_decoding_length=len(prefix) + 1,
                    repetition_penalty=self.repetition_penalty,
                    no_repeat_ngram_size=0,
                )
            except (RuntimeError, ValueError) as exc:
                raise TranslationError(f"{self.name} failed: {exc}") from exc
            for (i, _), result in zip(batch, results, strict=True):
                out[i] = list(result.hypotheses[0])
        return out

    def translate(
        self,
        sentences: Sequence[str],
        source: Language,
        target: Language,
        glossary: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Translate ``sentences`` (batched by ``batch_size``); one string per input, ``""`` for a
        blank one. Raises :class:`TranslationError` for an unsupported pair. A translation model
        cannot be told a ``glossary``: its output is checked and repaired against it afterwards."""
        raw = self.translate_tokens(sentences, source, target)
        if not any(raw):
            return ["" for _ in sentences]
        _, sp_target = self._tokenizers()
        prefix = self.target_prefix(target)
        return [self._decode(sp_target, tokens, prefix) for tokens in raw]

    def _decode(self, sp: SentencePieceProcessor, tokens: list[str], prefix: list[str]) -> str:
        if prefix and tokens[: len(prefix)] == prefix:
            tokens = tokens[len(prefix) :]
        pattern = _TOKEN_PATTERNS[self.family][0]
        unk = sp.unk_id()
        kept = []
        for token in tokens:
            if token in self._specials or pattern.fullmatch(token):
                continue
            piece = sp.piece_to_id(token)
            if piece == unk or sp.is_control(piece):  # not a text piece (madeupword, <pad>...)
                continue
            kept.append(token)
        return str(sp.decode_pieces(kept)).strip()


def load_translators(model_dirs: Sequence[str | Path], **kwargs: Any) -> list[CTranslate2Translator]:
    """One :class:`CTranslate2Translator` per directory (``kwargs`` go to each constructor).

    Raises :class:`TranslationError` for the first directory that is not a usable model.
    """
    if isinstance(model_dirs, str | Path):  # one directory, not a sequence of its characters
        model_dirs = [model_dirs]
    return [CTranslate2Translator(model_dir, **kwargs) for model_dir in model_dirs]


# --- metadata helpers ---------------------------------------------------------------------------------


def _first_file(directory: Path, names: Iterable[str]) -> Path | None:
    return next((directory / name for name in names if (directory / name).is_file()), None)


def _read_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TranslationError(f"NMT model directory {directory}: unreadable config.json: {exc}") from exc
    return config if isinstance(config, dict) else {}


def _read_vocabulary(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            tokens = json.loads(text)
            if not isinstance(tokens, list):
                raise ValueError("not a JSON list")
            return [str(t) for t in tokens]
    except (OSError, ValueError) as exc:
        raise TranslationError(f"Unreadable NMT vocabulary {path}: {exc}") from exc
    lines = text.split("\n")  # not splitlines(): tokens may hold other line-break characters
    return lines[:-1] if lines and lines[-1] == "" else lines


def _read_vocabularies(directory: Path) -> tuple[frozenset[str], frozenset[str]]:
    """(source, target) vocabularies of a CTranslate2 model directory."""

    def find(name: str) -> Path | None:
        return _first_file(directory, (f"{name}.json", f"{name}.txt"))

    shared = find("shared_vocabulary")
    if shared is not None:
        tokens = frozenset(_read_vocabulary(shared))
        return tokens, tokens
    source, target = find("source_vocabulary"), find("target_vocabulary")
    if source is None or target is None:
        raise TranslationError(
            f"NMT model directory {directory} has an unknown layout: no shared_vocabulary.json/.txt "
            "nor source_vocabulary + target_vocabulary (is it a translation model?)"
        )
    return frozenset(_read_vocabulary(source)), frozenset(_read_vocabulary(target))


def _language_codes(family: Family, vocabulary: Iterable[str]) -> set[str]:
    pattern = _TOKEN_PATTERNS[family][0]
    return {m.group(1) for token in vocabulary if (m := pattern.fullmatch(token))}


def _detect_family(vocabulary: frozenset[str], directory: Path) -> Family | None:
    for family in ("nllb", "m2m100", "madlad"):
        if len(_language_codes(family, vocabulary)) >= 2:
            return family
    if _language_codes("opus-mt", vocabulary) or _first_file(directory, ("source.spm", "target.spm")):
        return "opus-mt"
    return None


def _candidates(family: Family, lang: Language) -> list[str]:
    """Codes ``lang`` may have in ``family``'s vocabulary, best first."""
    overrides = _NLLB_OVERRIDES.get(lang.t, ())
    aliases = _CODE_ALIASES.get(lang.t, ())
    short = [c for c in (lang.iso1, lang.whisper) if c]
    if family == "nllb":
        codes = [*overrides, lang.t, lang.b]
    elif family in ("m2m100", "madlad"):
        codes = [*short, *aliases, lang.t, lang.b]
    else:
        codes = [*overrides, *(c.split("_")[0] for c in overrides), *aliases, lang.t, lang.b, *short]
    return list(dict.fromkeys(codes))


def _language_tokens(family: Family, vocabulary: Iterable[str]) -> dict[str, str]:
    """Language.b -> its token, for every language of :data:`LANGUAGES` the vocabulary names."""
    codes = _language_codes(family, vocabulary)
    by_base: dict[str, list[str]] = {}
    for code in sorted(codes):  # eng_Latn -> eng; for several scripts, the first sorted wins
        by_base.setdefault(re.split(r"[_-]", code, maxsplit=1)[0], []).append(code)
    template = _TOKEN_PATTERNS[family][1]
    tokens: dict[str, str] = {}
    for lang in LANGUAGES:
        for candidate in _candidates(family, lang):
            found = candidate if candidate in codes else None
            if found is None and "_" not in candidate and candidate in by_base:
                found = by_base[candidate][0]
            if found is not None:
                tokens[lang.b] = template.format(found)
                break
    return tokens


def _parse_side(code: str) -> _Side:
    """A language (any code :func:`~vodscribe.languages.resolve` takes), or ``None`` for a group."""
    try:
        return resolve(code)
    except UnknownLanguageError:
        if code.strip().lower() in _GROUPS or code.strip() == "*":
            return None
        raise


def _parse_pair(pair: str) -> tuple[_Side, _Side]:
    """``"en-de"``, ``"eng->ger"``, ``"mul-en"``, ``"pt-BR-en"``, ``"en:zh-Hans"`` -> (source, target).

    ``None`` stands for many languages (``mul``, a language group, ``*``). With ``-`` as the
    separator, subtags must be cased as BCP-47 writes them (``pt-BR``, ``zh-Hans``) to tell them from
    a language; ``->``, ``:`` and ``/`` need no such care.
    """
    text = pair.strip()
    for separator in ("->", ":", "/"):
        if separator in text:
            source, _, target = text.partition(separator)
            try:
                return _parse_side(source), _parse_side(target)
            except UnknownLanguageError as exc:
                raise TranslationError(f"Bad NMT language pair {pair!r}: {exc}") from exc
    parts = text.split("-")
    for cut in range(1, len(parts)):
        if len(parts) > 2 and _SUBTAG.fullmatch(parts[cut]):  # zh-Hans-en: "Hans" starts no side
            continue
        try:
            return _parse_side("-".join(parts[:cut])), _parse_side("-".join(parts[cut:]))
        except UnknownLanguageError:
            continue
    raise TranslationError(f"Bad NMT language pair {pair!r}: expected source-target codes, like en-de")


def _pair_from_dir_name(name: str) -> tuple[_Side, _Side] | None:
    """The pair an OPUS-MT directory name announces (``opus-mt-en-de``, ``opus-mt-tc-big-en-fr``,
    ``opus-mt-mul-en-ct2``): the last two adjacent ``-``-separated items that are languages (or
    groups), after the ``opus-mt`` prefix. ``None`` when there is none."""
    items = name.lower().split("-")
    if "mt" in items:  # opus-mt-...: "mt" is the prefix there, not Maltese
        items = items[items.index("mt") + 1 :]
    for i in range(len(items) - 2, -1, -1):
        try:
            return _parse_side(items[i]), _parse_side(items[i + 1])
        except UnknownLanguageError:
            continue
    return None
