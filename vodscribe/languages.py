"""The languages vodscribe can transcribe, and the codes Gcore's API uses for them.

Gcore documents every language field as a 3-letter ISO 639-2/B (bibliographic) code (``ger``, ``fre``,
``chi``...), while its ``/ai/info`` text lists ISO 639-2/T codes (``deu``, ``fra``, ``zho``...). Whisper
uses mostly ISO 639-1 codes, with two exceptions: Javanese is ``jw`` (not ``jv``) and Hawaiian, which has
no 639-1 code, is ``haw``. See ``docs/gcore-api.md`` §2.6 and §2.7.

Gcore's own table lists Norwegian Nynorsk under ``dut`` (Dutch's code) by mistake; here Nynorsk is
``nno`` and ``dut`` is always Dutch. Cantonese (``yue``) is added because faster-whisper can detect it.

Input codes are accepted in any of the forms above (see :func:`resolve`); output codes are always
639-2/B (:attr:`Language.b`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "DEFAULT_TRANSLATION_TARGETS",
    "ENGLISH",
    "LANGUAGES",
    "Language",
    "UnknownLanguageError",
    "from_whisper",
    "language_supported",
    "parse_language_list",
    "resolve",
]


@dataclass(frozen=True, slots=True)
class Language:
    """One language, with all the codes it goes by."""

    b: str
    """ISO 639-2/B code: the canonical code in Gcore's API and in everything vodscribe outputs."""
    t: str
    """ISO 639-2/T code (same as ``b`` for most languages)."""
    iso1: str | None
    """ISO 639-1 code (player ``sub_lang``, HLS ``LANGUAGE``); ``None`` for Hawaiian and Cantonese."""
    whisper: str
    """Code Whisper / faster-whisper uses."""
    name: str
    """English name, as Gcore lists it."""
    translatable: bool
    """In Gcore's 76-language "translation to/from other languages" set. Languages outside it can only
    be transcribed and translated to English."""


class UnknownLanguageError(ValueError):
    """A language code (or name) that is not in :data:`LANGUAGES`."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"Language code is not recognized: {code!r}")


def _lang(b: str, t: str, iso1: str, whisper: str, name: str, translatable: str) -> Language:
    return Language(b, t, iso1 or None, whisper, name, translatable == "Y")


# fmt: off
# (639-2/B, 639-2/T, 639-1, Whisper, name, translatable), in Gcore's order (docs/gcore-api.md §2.7).
LANGUAGES: tuple[Language, ...] = (
    _lang("afr", "afr", "af", "af", "Afrikaans", "Y"),
    _lang("alb", "sqi", "sq", "sq", "Albanian", "N"),
    _lang("amh", "amh", "am", "am", "Amharic", "Y"),
    _lang("ara", "ara", "ar", "ar", "Arabic", "Y"),
    _lang("arm", "hye", "hy", "hy", "Armenian", "Y"),
    _lang("asm", "asm", "as", "as", "Assamese", "Y"),
    _lang("aze", "aze", "az", "az", "Azerbaijani", "Y"),
    _lang("bak", "bak", "ba", "ba", "Bashkir", "N"),
    _lang("baq", "eus", "eu", "eu", "Basque", "Y"),
    _lang("bel", "bel", "be", "be", "Belarusian", "Y"),
    _lang("ben", "ben", "bn", "bn", "Bengali", "Y"),
    _lang("bos", "bos", "bs", "bs", "Bosnian", "Y"),
    _lang("bre", "bre", "br", "br", "Breton", "N"),
    _lang("bul", "bul", "bg", "bg", "Bulgarian", "Y"),
    _lang("bur", "mya", "my", "my", "Myanmar", "Y"),
    _lang("cat", "cat", "ca", "ca", "Catalan", "Y"),
    _lang("chi", "zho", "zh", "zh", "Chinese", "Y"),
    _lang("cze", "ces", "cs", "cs", "Czech", "Y"),
    _lang("dan", "dan", "da", "da", "Danish", "Y"),
    _lang("nno", "nno", "nn", "nn", "Nynorsk", "Y"),  # Gcore lists it under "dut" by mistake
    _lang("eng", "eng", "en", "en", "English", "Y"),
    _lang("est", "est", "et", "et", "Estonian", "Y"),
    _lang("fao", "fao", "fo", "fo", "Faroese", "N"),
    _lang("fin", "fin", "fi", "fi", "Finnish", "Y"),
    _lang("fre", "fra", "fr", "fr", "French", "Y"),
    _lang("geo", "kat", "ka", "ka", "Georgian", "Y"),
    _lang("ger", "deu", "de", "de", "German", "Y"),
    _lang("glg", "glg", "gl", "gl", "Galician", "Y"),
    _lang("gre", "ell", "el", "el", "Greek", "Y"),
    _lang("guj", "guj", "gu", "gu", "Gujarati", "Y"),
    _lang("hat", "hat", "ht", "ht", "Haitian creole", "N"),
    _lang("hau", "hau", "ha", "ha", "Hausa", "N"),
    _lang("haw", "haw", "",   "haw", "Hawaiian", "N"),
    _lang("heb", "heb", "he", "he", "Hebrew", "Y"),
    _lang("hin", "hin", "hi", "hi", "Hindi", "Y"),
    _lang("hrv", "hrv", "hr", "hr", "Croatian", "Y"),
    _lang("hun", "hun", "hu", "hu", "Hungarian", "Y"),
    _lang("ice", "isl", "is", "is", "Icelandic", "Y"),
    _lang("ind", "ind", "id", "id", "Indonesian", "Y"),
    _lang("ita", "ita", "it", "it", "Italian", "Y"),
    _lang("jav", "jav", "jv", "jw", "Javanese", "Y"),
    _lang("jpn", "jpn", "ja", "ja", "Japanese", "Y"),
    _lang("kan", "kan", "kn", "kn", "Kannada", "Y"),
    _lang("kaz", "kaz", "kk", "kk", "Kazakh", "Y"),
    _lang("khm", "khm", "km", "km", "Khmer", "Y"),
    _lang("kor", "kor", "ko", "ko", "Korean", "Y"),
    _lang("lao", "lao", "lo", "lo", "Lao", "Y"),
    _lang("lat", "lat", "la", "la", "Latin", "N"),
    _lang("lav", "lav", "lv", "lv", "Latvian", "Y"),
    _lang("lin", "lin", "ln", "ln", "Lingala", "N"),
    _lang("lit", "lit", "lt", "lt", "Lithuanian", "Y"),
    _lang("ltz", "ltz", "lb", "lb", "Luxembourgish", "N"),
    _lang("mac", "mkd", "mk", "mk", "Macedonian", "Y"),
    _lang("mal", "mal", "ml", "ml", "Malayalam", "Y"),
    _lang("mao", "mri", "mi", "mi", "Maori", "N"),
    _lang("mar", "mar", "mr", "mr", "Marathi", "Y"),
    _lang("may", "msa", "ms", "ms", "Malay", "N"),
    _lang("mlg", "mlg", "mg", "mg", "Malagasy", "N"),
    _lang("mlt", "mlt", "mt", "mt", "Maltese", "Y"),
    _lang("mon", "mon", "mn", "mn", "Mongolian", "Y"),
    _lang("nep", "nep", "ne", "ne", "Nepali", "Y"),
    _lang("dut", "nld", "nl", "nl", "Dutch", "Y"),
    _lang("nor", "nor", "no", "no", "Norwegian", "N"),
    _lang("oci", "oci", "oc", "oc", "Occitan", "N"),
    _lang("pan", "pan", "pa", "pa", "Punjabi", "Y"),
    _lang("per", "fas", "fa", "fa", "Persian", "Y"),
    _lang("pol", "pol", "pl", "pl", "Polish", "Y"),
    _lang("por", "por", "pt", "pt", "Portuguese", "Y"),
    _lang("pus", "pus", "ps", "ps", "Pashto", "Y"),
    _lang("rum", "ron", "ro", "ro", "Romanian", "Y"),
    _lang("rus", "rus", "ru", "ru", "Russian", "Y"),
    _lang("san", "san", "sa", "sa", "Sanskrit", "N"),
    _lang("sin", "sin", "si", "si", "Sinhala", "N"),
    _lang("slo", "slk", "sk", "sk", "Slovak", "Y"),
    _lang("slv", "slv", "sl", "sl", "Slovenian", "Y"),
    _lang("sna", "sna", "sn", "sn", "Shona", "Y"),
    _lang("snd", "snd", "sd", "sd", "Sindhi", "Y"),
    _lang("som", "som", "so", "so", "Somali", "Y"),
    _lang("spa", "spa", "es", "es", "Spanish", "Y"),
    _lang("srp", "srp", "sr", "sr", "Serbian", "Y"),
    _lang("sun", "sun", "su", "su", "Sundanese", "N"),
    _lang("swa", "swa", "sw", "sw", "Swahili", "Y"),
    _lang("swe", "swe", "sv", "sv", "Swedish", "Y"),
    _lang("tam", "tam", "ta", "ta", "Tamil", "Y"),
    _lang("tat", "tat", "tt", "tt", "Tatar", "N"),
    _lang("tel", "tel", "te", "te", "Telugu", "Y"),
    _lang("tgk", "tgk", "tg", "tg", "Tajik", "Y"),
    _lang("tgl", "tgl", "tl", "tl", "Tagalog", "Y"),
    _lang("tha", "tha", "th", "th", "Thai", "Y"),
    _lang("tib", "bod", "bo", "bo", "Tibetan", "N"),
    _lang("tuk", "tuk", "tk", "tk", "Turkmen", "N"),
    _lang("tur", "tur", "tr", "tr", "Turkish", "Y"),
    _lang("ukr", "ukr", "uk", "uk", "Ukrainian", "Y"),
    _lang("urd", "urd", "ur", "ur", "Urdu", "Y"),
    _lang("uzb", "uzb", "uz", "uz", "Uzbek", "N"),
    _lang("vie", "vie", "vi", "vi", "Vietnamese", "Y"),
    _lang("wel", "cym", "cy", "cy", "Welsh", "Y"),
    _lang("yid", "yid", "yi", "yi", "Yiddish", "N"),
    _lang("yor", "yor", "yo", "yo", "Yoruba", "Y"),
    # Not in Gcore's list; faster-whisper (large-v3 models) can detect and transcribe it.
    _lang("yue", "yue", "",   "yue", "Cantonese", "N"),
)
# fmt: on

# Other spellings people (and Whisper's own alias table) use. Keys are lower-case; values are B codes.
_NAME_ALIASES: dict[str, str] = {
    "burmese": "bur",
    "castilian": "spa",
    "flemish": "dut",
    "haitian": "hat",
    "letzeburgesch": "ltz",
    "mandarin": "chi",
    "moldavian": "rum",
    "moldovan": "rum",
    "norwegian nynorsk": "nno",
    "panjabi": "pan",
    "pushto": "pus",
    "sinhalese": "sin",
    "valencian": "cat",
    "farsi": "per",
    "slovene": "slv",
}
# Deprecated ISO 639-1 codes some platforms (Java, old Android) still emit, and Norwegian Bokmål, which
# Whisper transcribes as "no".
_CODE_ALIASES: dict[str, str] = {
    "iw": "heb",
    "in": "ind",
    "ji": "yid",
    "nb": "nor",
    "nob": "nor",
}


def _build_index() -> dict[str, Language]:
    index: dict[str, Language] = {}

    def add(key: str, lang: Language) -> None:
        key = _normalize(key)
        existing = index.setdefault(key, lang)
        if existing is not lang:  # pragma: no cover - guards edits to the table
            raise RuntimeError(f"language key {key!r} is ambiguous: {existing.name} / {lang.name}")

    by_b = {lang.b: lang for lang in LANGUAGES}
    for lang in LANGUAGES:
        for key in (lang.b, lang.t, lang.iso1, lang.whisper, lang.name):
            if key:
                add(key, lang)
    for alias, b in (_NAME_ALIASES | _CODE_ALIASES).items():
        add(alias, by_b[b])
    return index


def _normalize(code: str) -> str:
    return " ".join(code.split()).lower()


_INDEX: dict[str, Language] = _build_index()
_BY_WHISPER: dict[str, Language] = {lang.whisper: lang for lang in LANGUAGES}
_BCP47 = re.compile(r"([a-z]{2,3})[-_][a-z0-9][a-z0-9_-]*")

ENGLISH: Language = _INDEX["eng"]
"""English: the one target every known audio language can be translated to."""
DEFAULT_TRANSLATION_TARGETS: tuple[Language, ...] = (_INDEX["eng"], _INDEX["fre"], _INDEX["ger"])
"""What Gcore's ``"default"`` means for ``auto_translate_subtitles_language``: eng, fre, ger."""


def resolve(code: str) -> Language:
    """The language ``code`` names.

    Accepted, case-insensitively and with surrounding whitespace trimmed: the ISO 639-2/B code
    (``ger``), the 639-2/T code (``deu``), the ISO 639-1 code (``de``), the Whisper code (``jw``,
    ``haw``), the English name (``German``), and BCP-47-style tags by their primary subtag (``de-DE``,
    ``pt_BR``, ``zh-Hans``). ``dut`` is Dutch; Nynorsk is ``nno`` / ``nn``.

    Raises :class:`UnknownLanguageError` for anything else.
    """
    if not isinstance(code, str):
        raise UnknownLanguageError(str(code))
    key = _normalize(code)
    lang = _INDEX.get(key)
    if lang is None and (match := _BCP47.fullmatch(key)):
        lang = _INDEX.get(match.group(1))
    if lang is None:
        raise UnknownLanguageError(code.strip())
    return lang


def from_whisper(code: str) -> Language:
    """The language for a Whisper / faster-whisper language code (``en``, ``jw``, ``haw``, ``yue``...).

    Only Whisper's own codes are accepted (so ``jv`` is rejected; use :func:`resolve` for that).
    Raises :class:`UnknownLanguageError` for an unknown code.
    """
    lang = _BY_WHISPER.get(_normalize(code)) if isinstance(code, str) else None
    if lang is None:
        raise UnknownLanguageError(str(code).strip())
    return lang


def parse_language_list(value: str) -> list[Language]:
    """Parse a Gcore ``auto_translate_subtitles_language``-style value.

    ``value`` is a comma-separated list of language codes (any form :func:`resolve` accepts), where
    ``default`` stands for eng, fre, ger. ``disable`` or an empty value gives ``[]``. Duplicates are
    dropped, first occurrence wins, order is kept; empty items (``"eng,,fre,"``) are ignored.

    Raises :class:`UnknownLanguageError` for an unknown item.
    """
    if _normalize(value) in ("", "disable"):
        return []
    result: list[Language] = []
    for item in value.split(","):
        key = _normalize(item)
        if not key:
            continue
        langs = DEFAULT_TRANSLATION_TARGETS if key == "default" else (resolve(item),)
        for lang in langs:
            if lang not in result:
                result.append(lang)
    return result


def language_supported(
    audio_language: str,
    subtitles_language: str | None,
    *,
    can_translate: Callable[[Language, Language], bool],
) -> bool:
    """``/ai/info?type=language_support`` (docs/gcore-api.md §2.6, inferred logic).

    * Only ``audio_language`` (``subtitles_language`` ``None`` or blank): true when the audio language
      is known, i.e. can be transcribed.
    * ``subtitles_language`` is the audio language: true when the audio language is known.
    * Otherwise: what the server's translation backends can really do for that pair,
      ``can_translate(audio, subtitles)``.

    Unknown ``audio_language`` / ``subtitles_language`` codes give ``False``, never an exception.
    """
    try:
        audio = resolve(audio_language)
    except UnknownLanguageError:
        return False
    if subtitles_language is None or not subtitles_language.strip():
        return True
    try:
        target = resolve(subtitles_language)
    except UnknownLanguageError:
        return False
    if target is audio:
        return True
    return can_translate(audio, target)
