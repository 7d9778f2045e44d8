"""Tests for vodscribe.languages (docs/gcore-api.md §2.6 and §2.7)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable

import pytest

from vodscribe import languages as L
from vodscribe.languages import (
    LANGUAGES,
    Language,
    UnknownLanguageError,
    from_whisper,
    language_supported,
    parse_language_list,
    resolve,
)


def codes(text: str) -> list[str]:
    return text.split(", ")


# Verbatim from docs/gcore-api.md §2.6 (the /ai/info capability text, 639-2/T codes).
SPEC_TRANSCRIBABLE_T = codes(
    "afr, sqi, amh, ara, hye, asm, aze, bak, eus, bel, ben, bos, bre, bul, mya, cat, zho, hrv, ces, dan, "
    "nld, eng, est, fao, fin, fra, glg, kat, deu, guj, hat, hau, haw, heb, hin, hun, isl, ind, ita, jpn, "
    "jav, kan, kaz, khm, kor, lao, lat, lav, lin, lit, ltz, mkd, mlg, msa, mal, mlt, mri, mar, ell, mon, "
    "nep, nor, nno, oci, pan, fas, pol, por, pus, ron, rus, san, srp, sna, snd, sin, slk, slv, som, spa, "
    "sun, swa, swe, tgl, tgk, tam, tat, tel, tha, bod, tur, tuk, ukr, urd, uzb, vie, cym, yid, yor"
)
SPEC_TRANSLATABLE_T = codes(
    "afr, amh, ara, hye, asm, aze, eus, bel, ben, bos, bul, mya, cat, zho, hrv, ces, dan, nld, eng, est, "
    "fin, fra, glg, kat, deu, guj, heb, hin, hun, isl, ind, ita, jpn, jav, kan, kaz, khm, kor, lao, lav, "
    "lit, mkd, mal, mlt, mar, ell, mon, nep, nno, pan, fas, pol, por, pus, ron, rus, srp, sna, snd, slk, "
    "slv, som, spa, swa, swe, tgl, tgk, tam, tel, tha, tur, ukr, urd, vie, cym, yor"
)
# docs/gcore-api.md §2.7, the B codes that differ from their T code.
SPEC_B_TO_T = {
    "alb": "sqi", "arm": "hye", "baq": "eus", "bur": "mya", "chi": "zho", "cze": "ces", "fre": "fra",
    "geo": "kat", "ger": "deu", "gre": "ell", "ice": "isl", "mac": "mkd", "mao": "mri", "may": "msa",
    "dut": "nld", "per": "fas", "rum": "ron", "slo": "slk", "tib": "bod", "wel": "cym",
}  # fmt: skip


def by_b(code: str) -> Language:
    return next(lang for lang in LANGUAGES if lang.b == code)


ENG, FRE, GER = by_b("eng"), by_b("fre"), by_b("ger")


def faster_whisper_codes() -> tuple[str, ...]:
    tokenizer = pytest.importorskip("faster_whisper.tokenizer")
    return tuple(tokenizer._LANGUAGE_CODES)


# --- the table ----------------------------------------------------------------------------------


def test_count_is_whisper_99_plus_cantonese() -> None:
    assert len(LANGUAGES) == 100
    assert [lang.b for lang in LANGUAGES if lang.b == "yue"] == ["yue"]
    assert sum(lang.translatable for lang in LANGUAGES) == 76


def test_codes_are_unique_per_column() -> None:
    for field in ("b", "t", "iso1", "whisper", "name"):
        values = [getattr(lang, field) for lang in LANGUAGES if getattr(lang, field) is not None]
        assert len(values) == len(set(values)), field


def test_codes_are_well_formed() -> None:
    for lang in LANGUAGES:
        assert len(lang.b) == 3 and lang.b.islower() and lang.b.isascii(), lang
        assert len(lang.t) == 3 and lang.t.islower() and lang.t.isascii(), lang
        assert lang.iso1 is None or (len(lang.iso1) == 2 and lang.iso1.islower()), lang
        assert lang.whisper.islower(), lang
        assert lang.name and lang.name[0].isupper(), lang


def test_language_is_frozen_and_hashable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ENG.b = "xxx"  # type: ignore[misc]
    assert len({*LANGUAGES}) == len(LANGUAGES)
    fields = [f.name for f in dataclasses.fields(Language)]
    assert fields == ["b", "t", "iso1", "whisper", "name", "translatable"]


def test_t_codes_match_spec_ai_info_list() -> None:
    gcore = [lang for lang in LANGUAGES if lang.b != "yue"]
    assert len(SPEC_TRANSCRIBABLE_T) == 99
    assert sorted(lang.t for lang in gcore) == sorted(SPEC_TRANSCRIBABLE_T)


def test_translatable_set_matches_spec() -> None:
    assert len(SPEC_TRANSLATABLE_T) == 76
    assert sorted(lang.t for lang in LANGUAGES if lang.translatable) == sorted(SPEC_TRANSLATABLE_T)


def test_b_codes_that_differ_from_t() -> None:
    differing = {lang.b: lang.t for lang in LANGUAGES if lang.b != lang.t}
    assert differing == SPEC_B_TO_T


def test_special_entries() -> None:
    jav = by_b("jav")
    assert (jav.t, jav.iso1, jav.whisper, jav.name) == ("jav", "jv", "jw", "Javanese")
    haw = by_b("haw")
    assert (haw.t, haw.iso1, haw.whisper, haw.translatable) == ("haw", None, "haw", False)
    yue = by_b("yue")
    assert (yue.t, yue.iso1, yue.whisper, yue.name, yue.translatable) == (
        "yue", None, "yue", "Cantonese", False,
    )  # fmt: skip
    nno = by_b("nno")
    assert (nno.t, nno.iso1, nno.whisper, nno.translatable) == ("nno", "nn", "nn", True)
    dut = by_b("dut")
    assert (dut.t, dut.iso1, dut.whisper, dut.name) == ("nld", "nl", "nl", "Dutch")
    assert [lang.name for lang in LANGUAGES if lang.b == "dut"] == ["Dutch"]


def test_whisper_codes_match_faster_whisper() -> None:
    codes = faster_whisper_codes()
    assert sorted(lang.whisper for lang in LANGUAGES) == sorted(codes)


# --- resolve --------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES, ids=lambda lang: lang.b)
def test_every_code_resolves_back(lang: Language) -> None:
    for code in (lang.b, lang.t, lang.iso1, lang.whisper, lang.name):
        if code is None:
            continue
        assert resolve(code) is lang, code
        assert resolve(code.upper()) is lang, code
        assert resolve(f"  {code.title()}\t") is lang, code


@pytest.mark.parametrize(
    ("code", "b"),
    [
        ("GER", "ger"),
        (" deu ", "ger"),
        ("de", "ger"),
        ("de-DE", "ger"),
        ("de_at", "ger"),
        ("German", "ger"),
        ("german", "ger"),
        ("GERMAN", "ger"),
        ("english", "eng"),
        ("en-US", "eng"),
        ("EN_gb", "eng"),
        ("pt_BR", "por"),
        ("pt-BR", "por"),
        ("zh-Hans", "chi"),
        ("zh-Hant-TW", "chi"),
        ("zho", "chi"),
        ("fra", "fre"),
        ("fr-CA", "fre"),
        ("nld", "dut"),
        ("nl-BE", "dut"),
        ("dut", "dut"),
        ("Dutch", "dut"),
        ("nno", "nno"),
        ("nn", "nno"),
        ("nn-NO", "nno"),
        ("Nynorsk", "nno"),
        ("Norwegian Nynorsk", "nno"),
        ("nor", "nor"),
        ("no", "nor"),
        ("nb-NO", "nor"),
        ("jw", "jav"),
        ("jv", "jav"),
        ("jav", "jav"),
        ("jv-ID", "jav"),
        ("haw", "haw"),
        ("haw-US", "haw"),
        ("Hawaiian", "haw"),
        ("yue", "yue"),
        ("yue-HK", "yue"),
        ("Cantonese", "yue"),
        ("Haitian creole", "hat"),
        ("haitian  CREOLE", "hat"),
        ("Myanmar", "bur"),
        ("Burmese", "bur"),
        ("iw", "heb"),
        ("sr-Latn-RS", "srp"),
    ],
)
def test_resolve_aliases(code: str, b: str) -> None:
    assert resolve(code).b == b


UNKNOWN_CODES = ["xxx", " xxx ", "", "   ", "e", "english-US", "zz", "zz-ZZ", "de--", "-de", "de-",
                 "default", "disable", "eng,fre", "en US", "e n"]  # fmt: skip


@pytest.mark.parametrize("code", UNKNOWN_CODES)
def test_resolve_unknown_raises(code: str) -> None:
    with pytest.raises(UnknownLanguageError) as info:
        resolve(code)
    assert info.value.code == code.strip()


def test_unknown_error_message() -> None:
    with pytest.raises(UnknownLanguageError, match=r"^Language code is not recognized: 'xxx'$"):
        resolve("xxx")
    assert issubclass(UnknownLanguageError, ValueError)
    assert str(UnknownLanguageError("klingon")) == "Language code is not recognized: 'klingon'"


# --- from_whisper ---------------------------------------------------------------------------------


def test_every_faster_whisper_code_maps() -> None:
    for code in faster_whisper_codes():
        lang = from_whisper(code)
        assert lang.whisper == code
        assert resolve(code) is lang


@pytest.mark.parametrize(("code", "b"), [("en", "eng"), ("jw", "jav"), ("haw", "haw"), ("yue", "yue"),
                                         ("nn", "nno"), ("nl", "dut"), (" DE ", "ger")])  # fmt: skip
def test_from_whisper(code: str, b: str) -> None:
    assert from_whisper(code).b == b


@pytest.mark.parametrize("code", ["jv", "eng", "ger", "German", "xx", ""])
def test_from_whisper_rejects_non_whisper_codes(code: str) -> None:
    with pytest.raises(UnknownLanguageError):
        from_whisper(code)


# --- parse_language_list ----------------------------------------------------------------------------


def test_parse_default() -> None:
    assert parse_language_list("default") == [ENG, FRE, GER]
    assert parse_language_list(" Default ") == [ENG, FRE, GER]
    assert [lang.b for lang in parse_language_list("default")] == ["eng", "fre", "ger"]


@pytest.mark.parametrize("value", ["disable", "DISABLE", " disable ", "", "  "])
def test_parse_disabled(value: str) -> None:
    assert parse_language_list(value) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("eng, fre,eng", ["eng", "fre"]),
        ("ger", ["ger"]),
        ("deu,ger,de,German", ["ger"]),
        ("spa,default", ["spa", "eng", "fre", "ger"]),
        ("fre,default,ita", ["fre", "eng", "ger", "ita"]),
        ("eng,,fre,", ["eng", "fre"]),
        ("nno,dut,nld", ["nno", "dut"]),
        ("pt-BR, zh-Hans", ["por", "chi"]),
    ],
)
def test_parse_list(value: str, expected: list[str]) -> None:
    assert [lang.b for lang in parse_language_list(value)] == expected


@pytest.mark.parametrize("value", ["eng,xxx", "xxx", "eng,disable", "eng;fre"])
def test_parse_unknown_item_raises(value: str) -> None:
    with pytest.raises(UnknownLanguageError):
        parse_language_list(value)


def test_parse_unknown_item_message_names_the_item() -> None:
    with pytest.raises(UnknownLanguageError, match="'xxx'"):
        parse_language_list("eng, xxx ,fre")


# --- language_supported ---------------------------------------------------------------------------


def _server(targets: object) -> Callable[[Language, Language], bool]:
    """What a server with Whisper (any language to English) and a text backend translating between
    the translatable languages into ``targets`` (codes in any form; unknown ones ignored) can do."""
    codes = (targets,) if isinstance(targets, str) else tuple(targets)  # type: ignore[arg-type]
    wanted = set()
    for code in codes:
        with contextlib.suppress(UnknownLanguageError):
            wanted.add(L.resolve(code))

    def can_translate(source: Language, target: Language) -> bool:
        if target is ENG:
            return True
        return source.translatable and target.translatable and target in wanted

    return can_translate


@pytest.mark.parametrize(
    ("audio", "subs", "targets", "expected"),
    [
        # transcription only
        ("eng", None, (), True),
        ("fre", None, (), True),
        ("eng", "", (), True),
        ("uzb", None, (), True),
        ("haw", None, (), True),
        ("yue", None, (), True),
        ("nno", None, (), True),
        ("deu", None, (), True),
        ("xxx", None, (), False),
        ("", None, (), False),
        # same language or English
        ("eng", "eng", (), True),
        ("fre", "fra", (), True),
        ("fre", "eng", (), True),
        ("uzb", "eng", (), True),
        ("uzb", "uzb", (), True),
        ("yue", "eng", (), True),
        ("haw", "en", (), True),
        ("xxx", "eng", (), False),
        ("eng", "xxx", {"fre"}, False),
        # translation to other languages needs a backend that can produce the target
        ("eng", "fre", {"fre"}, True),
        ("eng", "fre", (), False),
        ("eng", "fre", {"ger"}, False),
        ("eng", "fre", {"fra"}, True),
        ("eng", "fre", {"fr"}, True),
        ("eng", "fra", ["French"], True),
        ("eng", "fre", {"bogus", "fre"}, True),
        ("eng", "fre", {"bogus"}, False),
        ("eng", "fre", "fre", True),
        ("eng", "fre", "ger", False),
        ("ger", "nno", {"nno"}, True),
        ("ger", "nno", {"dut"}, False),
        ("ger", "dut", {"nld"}, True),
        # both languages must be in the 76-language set
        ("uzb", "fre", {"fre"}, False),
        ("eng", "uzb", {"uzb"}, False),
        ("eng", "yue", {"yue"}, False),
        ("haw", "ger", {"ger"}, False),
    ],
)
def test_language_supported(audio: str, subs: str | None, targets: object, expected: bool) -> None:
    assert language_supported(audio, subs, can_translate=_server(targets)) is expected


def test_language_supported_asks_the_backends_only_for_real_pairs() -> None:
    asked: list[tuple[str, str]] = []

    def can_translate(source: Language, target: Language) -> bool:
        asked.append((source.b, target.b))
        return False

    assert language_supported("fre", None, can_translate=can_translate)
    assert language_supported("fre", "fra", can_translate=can_translate)
    assert not language_supported("xxx", "eng", can_translate=can_translate)
    assert not language_supported("fre", "xxx", can_translate=can_translate)
    assert not language_supported("deu", "French", can_translate=can_translate)
    assert asked == [("ger", "fre")]


def test_language_supported_default_targets_only_allow_english() -> None:
    whisper_only = _server(())
    for audio in LANGUAGES:
        assert language_supported(audio.b, None, can_translate=whisper_only)
        assert language_supported(audio.t, "eng", can_translate=whisper_only)
        assert language_supported(audio.b, audio.t, can_translate=whisper_only)
        for target in (FRE, GER):
            if target is not audio:
                assert not language_supported(audio.b, target.b, can_translate=whisper_only)


def test_language_supported_full_matrix() -> None:
    everything = _server({lang.b for lang in LANGUAGES})
    for audio in LANGUAGES:
        for target in LANGUAGES:
            expected = target is audio or target is ENG or (audio.translatable and target.translatable)
            assert language_supported(audio.b, target.b, can_translate=everything) is expected


def test_module_constants() -> None:
    assert L.ENGLISH is ENG
    assert L.DEFAULT_TRANSLATION_TARGETS == (ENG, FRE, GER)
