"""Sentence-aware subtitle translation (speech/subtitle_translation.py) and the pipeline's backend choice.

The text engine here is a small deterministic one written for the tests (it upper-cases and tags
each sentence and records what it was asked), so the tests can see exactly which sentences were
sent and where their translations landed; the real engines have their own tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest

from vodscribe import languages
from vodscribe.engines.results import SpeechSegment, Word
from vodscribe.engines.text_translator import TextTranslator, TranslationError
from vodscribe.engines.whisper import get_engine
from vodscribe.errors import Cancelled, UnsupportedTranslation
from vodscribe.languages import Language
from vodscribe.speech.cues import build_cues
from vodscribe.speech.subtitle_translation import (
    MAX_SENTENCE_SECONDS,
    Sentence,
    TextTranslation,
    WhisperTranslation,
    choose,
    lay_over,
    split_sentences,
)
from vodscribe.speech.transcription import transcribe_file

DATA = Path(__file__).parent / "data"
ENG, GER, FRE, CHI = (languages.resolve(c) for c in ("eng", "ger", "fre", "chi"))


class Tagger:
    """Translates by upper-casing and appending the target code; remembers every call."""

    def __init__(self, pairs: set[tuple[str, str]], *, padding: str = "") -> None:
        self.name = "tagger"
        self.pairs = pairs
        self.padding = padding
        self.calls: list[tuple[str, str, list[str]]] = []

    def supports(self, source: Language, target: Language) -> bool:
        return (source.b, target.b) in self.pairs

    def targets(self) -> frozenset[str]:
        return frozenset(t for _, t in self.pairs)

    def translate(self, sentences: Sequence[str], source: Language, target: Language) -> list[str]:
        if not self.supports(source, target):
            raise TranslationError(f"{source.name} -> {target.name}")
        self.calls.append((source.b, target.b, list(sentences)))
        return [f"{s.upper()}{self.padding} [{target.iso1}]" for s in sentences]


def _segment(start: float, words: list[tuple[float, float, str]], lang: str = "en") -> SpeechSegment:
    ws = tuple(Word(s, e, t) for s, e, t in words)
    return SpeechSegment(start, ws[-1].end, "".join(w.text for w in ws).strip(), lang, ws)


def test_tagger_is_a_text_translator() -> None:
    assert isinstance(Tagger(set()), TextTranslator)


def test_sentences_are_regrouped_across_segment_boundaries() -> None:
    segments = [
        _segment(0.0, [(0.0, 0.4, " Ask"), (0.4, 0.8, " not"), (0.8, 1.2, " what")]),
        _segment(1.3, [(1.3, 1.6, " your"), (1.6, 2.0, " country"), (2.0, 2.4, " can."), (2.6, 3.0, " Mr.")]),
        _segment(3.1, [(3.1, 3.5, " Smith"), (3.5, 4.0, " agreed!")]),
    ]
    sentences = split_sentences(segments)
    assert [s.text for s in sentences] == ["Ask not what your country can.", "Mr. Smith agreed!"]
    assert (sentences[0].start, sentences[0].end) == (0.0, 2.4)
    assert (sentences[1].start, sentences[1].end) == (2.6, 4.0)


def test_unpunctuated_speech_is_cut_at_pauses_and_at_the_length_limit() -> None:
    words = [(i * 0.5, i * 0.5 + 0.4, f" w{i}") for i in range(10)]
    words += [(8.0 + i * 0.5, 8.4 + i * 0.5, f" v{i}") for i in range(60)]  # 30 s without a full stop
    sentences = split_sentences([_segment(0.0, words)])
    assert sentences[0].text == " ".join(f"w{i}" for i in range(10))  # the 3 s pause ends it
    assert all(s.end - s.start <= MAX_SENTENCE_SECONDS + 0.5 for s in sentences)
    assert " ".join(s.text for s in sentences).split() == [w.strip() for _, _, w in words]


def test_a_long_sentence_is_cut_at_its_last_clause_mark() -> None:
    words = [(i * 0.5, i * 0.5 + 0.4, f" a{i}") for i in range(20)]
    words[15] = (7.5, 7.9, " a15,")
    words += [(10.0 + i * 0.5, 10.4 + i * 0.5, f" b{i}") for i in range(10)]
    sentences = split_sentences([_segment(0.0, words)])
    assert sentences[0].text.endswith("a15,")


def test_words_are_joined_as_whisper_spaced_them() -> None:
    seg = _segment(0.0, [(0.0, 0.5, " It"), (0.5, 0.9, "'s"), (0.9, 1.2, " twenty"), (1.2, 1.5, "-five.")])
    nxt = _segment(2.0, [(2.0, 2.5, "Next"), (2.5, 3.0, " one.")])
    assert [s.text for s in split_sentences([seg, nxt])] == ["It's twenty-five.", "Next one."]


def test_chinese_sentences_have_no_spaces() -> None:
    seg = SpeechSegment(0.0, 2.0, "砸自己的脚。你好！", "zh")
    assert [s.text for s in split_sentences([seg])] == ["砸自己的脚。", "你好！"]


def test_translation_is_laid_over_speech_and_skips_the_pause() -> None:
    source = Sentence(
        "a b c d", (Word(0.0, 1.0, " a"), Word(1.0, 2.0, " b"), Word(5.0, 6.0, " c"), Word(6.0, 7.0, " d"))
    )
    words = lay_over("eins zwei drei vier", source)
    assert [w.text.strip() for w in words] == ["eins", "zwei", "drei", "vier"]
    assert words[0].start == 0.0 and words[-1].end == pytest.approx(7.0)
    for w in words:  # nothing is placed inside the 2-5 s pause
        assert not (2.0 < w.start < 5.0) and not (2.0 < w.end < 5.0)
    assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(words))


def test_text_translation_sends_sentences_and_keeps_timings() -> None:
    tagger = Tagger({("eng", "ger")})
    segments = [
        _segment(0.0, [(0.0, 0.4, " Ask"), (0.4, 0.8, " not"), (0.8, 1.2, " what")]),
        _segment(1.3, [(1.3, 1.6, " your"), (1.6, 2.0, " country"), (2.0, 2.4, " can.")]),
        _segment(9.0, [(9.0, 9.5, " Thank"), (9.5, 10.0, " you.")]),
    ]
    out = TextTranslation(tagger).translate(segments, ENG, GER)
    assert tagger.calls == [("eng", "ger", ["Ask not what your country can.", "Thank you."])]
    assert [s.text for s in out] == ["ASK NOT WHAT YOUR COUNTRY CAN. [de]", "THANK YOU. [de]"]
    assert all(s.language == "de" for s in out)
    assert (out[0].start, out[0].end) == (0.0, pytest.approx(2.4))
    assert (out[1].start, out[1].end) == (9.0, pytest.approx(10.0))


def test_translated_cues_follow_the_subtitle_rules() -> None:
    tagger = Tagger({("eng", "ger")}, padding=" und noch ein paar längere deutsche Wörter dazu")
    words = [(i * 0.4, i * 0.4 + 0.35, f" word{i}" + ("." if i % 9 == 8 else "")) for i in range(45)]
    out = TextTranslation(tagger).translate([_segment(0.0, words)], ENG, GER)
    cues = build_cues(out)
    assert len(cues) > len(out)  # long translations are re-split into several cues
    for cue in cues:
        lines = cue.text.split("\n")
        assert len(lines) <= 2 and all(len(line) <= 42 for line in lines)
        assert 0.0 <= cue.start < cue.end <= 18.0 + 7.0
        assert cue.end - cue.start <= 7.0 + 1e-6


def test_chinese_translation_is_cued_without_spaces() -> None:
    class ToChinese(Tagger):
        def translate(self, sentences: Sequence[str], source: Language, target: Language) -> list[str]:
            return ["不要问你的国家能为你做什么，要问你能为你的国家做什么。" for _ in sentences]

    words = [(i * 0.4, i * 0.4 + 0.35, f" w{i}") for i in range(11)] + [(4.4, 4.8, " end.")]
    out = TextTranslation(ToChinese({("eng", "chi")})).translate([_segment(0.0, words)], ENG, CHI)
    cues = build_cues(out)
    assert (
        "".join(c.text.replace("\n", "") for c in cues)
        == "不要问你的国家能为你做什么，要问你能为你的国家做什么。"
    )
    assert all(" " not in c.text for c in cues) and out[0].language == "zh"


def test_empty_input_and_a_miscounting_engine() -> None:
    tagger = Tagger({("eng", "ger")})
    assert TextTranslation(tagger).translate([], ENG, GER) == []
    assert tagger.calls == []

    class Dropper(Tagger):
        def translate(self, sentences: Sequence[str], source: Language, target: Language) -> list[str]:
            return list(sentences)[:-1]

    with pytest.raises(TranslationError, match="1 translations for 2 sentences"):
        TextTranslation(Dropper({("eng", "ger")})).translate(
            [_segment(0.0, [(0.0, 0.5, " One."), (1.0, 1.5, " Two.")])], ENG, GER
        )


def test_long_runs_go_in_chunks_with_progress_and_cancel() -> None:
    words = [(i * 1.0, i * 1.0 + 0.5, f" Sentence{i}.") for i in range(70)]
    tagger = Tagger({("eng", "ger")})
    seen: list[float] = []
    out = TextTranslation(tagger).translate([_segment(0.0, words)], ENG, GER, on_progress=seen.append)
    assert len(out) == 70 and [len(call[2]) for call in tagger.calls] == [32, 32, 6]
    assert seen == sorted(seen) and seen[-1] == 1.0
    polls = iter([False, True])
    with pytest.raises(Cancelled):
        TextTranslation(Tagger({("eng", "ger")})).translate(
            [_segment(0.0, words)], ENG, GER, should_stop=lambda: next(polls)
        )


def test_backends_are_chosen_in_order() -> None:
    whisper = WhisperTranslation()
    tagger = TextTranslation(Tagger({("ger", "eng"), ("eng", "fre")}))
    assert choose([whisper, tagger], GER, ENG) is whisper
    assert choose([tagger, whisper], GER, ENG) is tagger
    assert choose([whisper, tagger], ENG, FRE) is tagger
    assert choose([whisper, tagger], GER, FRE) is None
    assert choose([whisper], ENG, ENG) is None  # not a translation: never asked
    assert whisper.targets() == {"eng"}
    with pytest.raises(TranslationError):
        whisper.translate([], GER, ENG)


@pytest.mark.slow
def test_code_switching_file_is_translated_run_by_run() -> None:
    """English then German speech into French: each run goes out with its own source language."""
    tagger = Tagger({("eng", "fre"), ("ger", "fre")})
    progress: list[float] = []
    transcript = transcribe_file(
        DATA / "multilingual_en_de.mp3",
        get_engine(),
        subtitles_language=FRE,
        translators=[WhisperTranslation(), TextTranslation(tagger)],
        on_progress=progress.append,
    )
    assert progress == sorted(progress) and progress[-1] == 1.0  # recognition and translation, one bar
    assert [source for source, _, _ in tagger.calls] == ["eng", "ger"]
    assert transcript.translated_by == ("tagger",)
    assert transcript.languages[:2] == ("en", "de")
    text = " ".join(c.text for c in transcript.cues)
    assert "PERMISSION IS HEREBY GRANTED" in text.replace("\n", " ") and "[fr]" in text
    for cue in transcript.cues:
        assert all(len(line) <= 42 for line in cue.text.split("\n"))


@pytest.mark.slow
def test_speech_already_in_the_target_language_is_kept() -> None:
    tagger = Tagger({("ger", "eng")})
    transcript = transcribe_file(
        DATA / "multilingual_en_de.mp3",
        get_engine(),
        subtitles_language=ENG,
        translators=[TextTranslation(tagger)],
    )
    assert [source for source, _, _ in tagger.calls] == ["ger"]  # the English run is not translated
    text = " ".join(c.text for c in transcript.cues).replace("\n", " ")
    assert "Permission is hereby granted" in text and "[en]" in text


@pytest.mark.slow  # get_engine() loads Whisper
def test_unsupported_pair_fails_before_recognition() -> None:
    with pytest.raises(UnsupportedTranslation, match=r"from German to Chinese .* English"):
        transcribe_file(
            DATA / "cheetah_test_de.wav",
            get_engine(),
            language="de",
            subtitles_language=CHI,
            translators=[WhisperTranslation()],
        )
