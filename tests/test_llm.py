"""The out-of-the-box LLM translation backend: the bundled GGUF (joined and hash-checked) and
llama.cpp translating real sentences."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.conftest import llm_model_file
from vodscribe import languages
from vodscribe.engines import bundled_llm
from vodscribe.engines.chat_translation import ChatRequest, ChatTranslation
from vodscribe.engines.llm import LlamaTranslator, llm_available
from vodscribe.engines.parallel_decoding import ParallelDecoder
from vodscribe.engines.text_translator import TextTranslator, TranslationError
from vodscribe.models.store import sha256_of

ENG, GER, FRE, UZB, CHI = (languages.resolve(c) for c in ("eng", "ger", "fre", "uzb", "chi"))


@pytest.fixture(scope="module")
def translator() -> LlamaTranslator:
    return LlamaTranslator(llm_model_file())


def test_the_extra_is_installed() -> None:
    assert llm_available()


@pytest.mark.slow  # joins and hashes the 1.1 GB GGUF
def test_bundled_model_is_joined_once_and_hash_checked(tmp_path: Path) -> None:
    path = bundled_llm.model_path(tmp_path)
    assert path.stat().st_size == bundled_llm.MODEL_SIZE
    assert sha256_of(path) == bundled_llm.MODEL_SHA256
    mtime = path.stat().st_mtime_ns
    assert bundled_llm.model_path(tmp_path) == path and path.stat().st_mtime_ns == mtime  # reused
    # A damaged cached file is noticed (its stamp no longer matches) and rebuilt from the parts.
    with path.open("r+b") as f:
        f.seek(1000)
        f.write(b"\0\0\0\0")
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))
    assert bundled_llm.model_path(tmp_path) == path
    assert sha256_of(path) == bundled_llm.MODEL_SHA256
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [path.name, path.with_suffix(".verified").name]
    )


def test_a_tampered_part_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "part.bin"
    fake.write_bytes(b"not a model")
    monkeypatch.setattr(bundled_llm, "_part", lambda i: fake)
    cache = tmp_path / "cache"
    with pytest.raises(bundled_llm.BundledLLMError, match="refusing to load"):
        bundled_llm.model_path(cache)
    assert list(cache.iterdir()) == []  # nothing half-written is left


def test_languages_are_offered_without_loading(tmp_path: Path) -> None:
    t = LlamaTranslator(cache_dir=tmp_path)
    assert isinstance(t, TextTranslator)
    assert t.supports(ENG, GER) and t.supports(GER, CHI) and t.supports(FRE, ENG)
    assert not t.supports(ENG, UZB) and not t.supports(UZB, ENG) and not t.supports(ENG, ENG)
    assert {"eng", "ger", "fre", "chi", "rus"} <= t.targets()
    assert t._model is None and list(tmp_path.iterdir()) == []
    with pytest.raises(TranslationError, match="English to Uzbek"):
        t.translate(["Hello."], ENG, UZB)
    with pytest.raises(TranslationError, match="does not exist"):
        LlamaTranslator(tmp_path / "missing.gguf")


def _country(german: str) -> bool:
    """Whether ``german`` names the country ("Land", or "Länder" when the sums come out otherwise)."""
    return "Land" in german or "Länder" in german


@pytest.mark.slow  # loads the bundled GGUF
def test_translates_sentences_one_for_one(translator: LlamaTranslator) -> None:
    sentences = [
        "Ask not what your country can do for you.",
        "",
        "Ask what you can do for your country.",
        "The weather is nice today.",
    ]
    out = translator.translate(sentences, ENG, GER)
    assert len(out) == 4 and out[1] == ""
    assert all(text and text != src for text, src in zip(out, sentences, strict=True) if src)
    assert _country(out[0]) and _country(out[2]), out
    # Again, now from llama.cpp's prompt cache: the words may differ in the last digits (batching
    # and float sums vary run to run and between CPUs), what must hold still holds.
    again = translator.translate(sentences, ENG, GER)
    assert len(again) == 4 and again[1] == "" and _country(again[0]) and _country(again[2]), again


@pytest.mark.slow  # loads the bundled GGUF
def test_translates_into_english(translator: LlamaTranslator) -> None:
    [text] = translator.translate(["Die Werbung vermittelt einen falschen Eindruck."], GER, ENG)
    assert "impression" in text.lower(), text


class _Scripted:
    """A stand-in for the loaded model that answers from a script, to drive the batch/fallback logic."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.prompts: list[str] = []
        self.systems: list[str] = []
        self.rounds: list[int] = []  # requests made at once

    def chat(self, requests: Sequence[ChatRequest]) -> list[str]:
        self.rounds.append(len(requests))
        self.systems += [r.system for r in requests]
        self.prompts += [r.user for r in requests]
        return [self.answers.pop(0) for _ in requests]


def test_a_batch_answer_that_does_not_line_up_is_redone_one_by_one(tmp_path: Path) -> None:
    t = LlamaTranslator(cache_dir=tmp_path)
    t._model = _Scripted(["1. Eins und zwei.", '"Eins."', "2. Zwei."])
    assert t.translate(["One.", "Two."], ENG, GER) == ["Eins.", "Zwei."]
    assert t._model.prompts == ["1. One.\n2. Two.", "One.", "Two."]
    assert t._model.rounds == [1, 2]  # the lines redone alone are asked for at once


def test_a_sentence_that_starts_with_a_number_keeps_it(tmp_path: Path) -> None:
    t = LlamaTranslator(cache_dir=tmp_path)
    t._model = _Scripted(["2. Juli war heiß.", "1. Hallo."])
    assert t.translate(["2. July was hot."], ENG, GER) == ["2. Juli war heiß."]
    assert t.translate(["Hello."], ENG, GER) == ["Hallo."]


def test_a_numbered_answer_is_unpacked(tmp_path: Path) -> None:
    t = LlamaTranslator(cache_dir=tmp_path)
    t._model = _Scripted(["Here you go:\n1. Eins.\n2)  Zwei  drei.\n"])
    assert t.translate(["One.", "Two three."], ENG, GER) == ["Eins.", "Zwei drei."]
    assert t._model.prompts == ["1. One.\n2. Two three."]  # no context by default


def test_batches_carry_their_neighbours_as_context(tmp_path: Path) -> None:
    t = LlamaTranslator(cache_dir=tmp_path)
    t._chats.context_before, t._chats.context_after = 2, 1  # off by default: it did not raise chrF
    sentences = [f"Line {n}." for n in range(1, 11)]
    sentences.insert(3, "")  # blank sentences are neither translated nor context
    t._model = _Scripted(["\n".join(f"{n}. Zeile {n}." for n in range(1, 9)), "1. Zeile 9.\n2. Zeile 10."])
    out = t.translate(sentences, ENG, GER)
    assert out == [*(f"Zeile {n}." for n in range(1, 4)), "", *(f"Zeile {n}." for n in range(4, 11))]
    first, second = t._model.prompts
    assert first == (
        "Context, do not translate:\n(after) Line 9.\n\nTranslate:\n"
        + "\n".join(f"{n}. Line {n}." for n in range(1, 9))
    )
    assert second == (
        "Context, do not translate:\n(before) Line 7.\n(before) Line 8.\n\n"
        "Translate:\n1. Line 9.\n2. Line 10."
    )
    system = t._model.systems[0]
    assert "context" in system and "do not translate it" in system
    assert "Keep names and numbers" in system and "no English words left" in system


class _Chat:
    """A scripted ``chat`` callable for :class:`ChatTranslation`: answers in order, records prompts."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.prompts: list[str] = []

    def __call__(self, system: str, user: str, max_tokens: int) -> str:
        self.prompts.append(user)
        return self.answers.pop(0)


SOURCE = [f"English line number {n}." for n in range(1, 9)]  # 24-25 characters each
GERMAN = [f"Deutsche Zeile Nummer {n}." for n in range(1, 9)]  # about as long


def _calibrated(answers: list[str]) -> tuple[ChatTranslation, _Chat]:
    """A ChatTranslation that has learnt the English -> German length ratio from one full batch."""
    chat = _Chat(["\n".join(f"{n}. {g}" for n, g in enumerate(GERMAN, 1)), *answers])
    chats = ChatTranslation(chat)
    assert chats.ratio(ENG, GER) is None
    assert chats.translate(SOURCE, ENG, GER) == GERMAN
    ratio = chats.ratio(ENG, GER)
    assert ratio is not None and 1.0 < ratio < 1.1
    chat.prompts.clear()
    return chats, chat


def test_an_incomplete_answer_keeps_its_lines_and_redoes_only_the_missing() -> None:
    chats, chat = _calibrated(
        [
            "1. Erste Zeile hier, bitte.\n2. Zweite Zeile hier, bitte.\n3. Dritte Zeile hier, bitte.",
            *GERMAN[2:],
        ]
    )
    out = chats.translate(SOURCE, ENG, GER)
    assert out == ["Erste Zeile hier, bitte.", "Zweite Zeile hier, bitte.", *GERMAN[2:]]
    # Lines 1 and 2 are kept; 4-8 are missing, and 3, where the answer stopped, is redone with them.
    assert chat.prompts[1:] == SOURCE[2:]


def test_a_hole_in_an_answer_is_filled_one_by_one() -> None:
    answer = "\n".join(f"{n}. {g}" for n, g in enumerate(GERMAN, 1) if n != 3)
    chats, chat = _calibrated([answer, "Die dritte Zeile."])
    assert chats.translate(SOURCE, ENG, GER) == [*GERMAN[:2], "Die dritte Zeile.", *GERMAN[3:]]
    assert chat.prompts[1:] == [SOURCE[2]]


def test_a_merged_and_renumbered_answer_is_redone_whole() -> None:
    # What the bundled model did with fragments: lines 1 and 2 joined, then every later line numbered
    # one too low (its line 2 translates sentence 3...). The numbers line up; the lengths do not.
    merged = [f"{GERMAN[0]} {GERMAN[1]}", *GERMAN[2:]]
    chats, chat = _calibrated(["\n".join(f"{n}. {g}" for n, g in enumerate(merged, 1)), *GERMAN])
    assert chats.translate(SOURCE, ENG, GER) == GERMAN
    assert chat.prompts[1:] == SOURCE


def test_a_line_far_out_of_proportion_is_redone_with_the_lines_after_it() -> None:
    long_source = [*SOURCE[:3], "Yes.", *SOURCE[4:]]
    answer = [*GERMAN[:3], "Ja, und dann gingen wir alle zusammen nach Hause.", *GERMAN[4:]]
    chats, chat = _calibrated(["\n".join(f"{n}. {g}" for n, g in enumerate(answer, 1)), "Ja.", *GERMAN[4:]])
    assert chats.translate(long_source, ENG, GER) == [*GERMAN[:3], "Ja.", *GERMAN[4:]]
    assert chat.prompts[1:] == long_source[3:]


def test_an_answer_numbering_lines_the_batch_lacks_is_redone_whole() -> None:
    chat = _Chat(["1. Eins.\n2. Zwei.\n3. Drei.", "Eins.", "Zwei."])
    assert ChatTranslation(chat).translate(["One.", "Two."], ENG, GER) == ["Eins.", "Zwei."]
    assert chat.prompts == ["1. One.\n2. Two.", "One.", "Two."]


# --- parallel decoding ---------------------------------------------------------------------------


@pytest.mark.slow  # loads the bundled GGUF
def test_texts_translated_at_the_same_time_are_decoded_together(translator: LlamaTranslator) -> None:
    decoder = translator.loaded().decoder
    steps, answering, reused = decoder.stats.steps, decoder.stats.answering, decoder.stats.reused_tokens
    sentences = ["Ask not what your country can do for you.", "Ask what you can do for your country."]
    # Words one of which each translation holds (the country, or "you"): the greedy answer depends on
    # what is decoded beside it, through the last digits of its sums ("Land" one time, "Länder" another).
    targets = {
        "ger": ("land", "länder", "du ", "dich", "sie "),
        "fre": ("pays", "vous", "tu ", "toi"),
        "spa": ("país", "pais", "usted", "tú", "ti "),
    }
    out: dict[str, list[str]] = {}

    def translate(code: str) -> None:
        out[code] = translator.translate(sentences, ENG, languages.resolve(code))

    threads = [threading.Thread(target=translate, args=(code,)) for code in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for code, words in targets.items():
        assert len(out[code]) == 2 and all(any(w in line.lower() for w in words) for line in out[code]), (
            code,
            out[code],
        )
    assert len({out[code][0] for code in targets}) == 3, out  # three languages, not one
    # Each text is one numbered batch: the three were decoded side by side, not one after another.
    assert (decoder.stats.answering - answering) / (decoder.stats.steps - steps) > 1.5, decoder.stats
    assert decoder.stats.reused_tokens > reused  # the shared start of the prompts was computed once


@pytest.mark.slow  # loads the bundled GGUF
def test_the_parallel_decoder_keeps_every_request_within_its_share(translator: LlamaTranslator) -> None:
    loaded = translator.loaded()
    decoder = ParallelDecoder(loaded.model, slots=2, context=256, threads=2, batch=64)
    try:
        prompts = [loaded.prompt("Answer in one word.", f"Name a colour, number {n}.") for n in range(5)]
        first = prompts[0]
        assert all(p[:10] == first[:10] for p in prompts)  # the system prompt: computed once, copied
        answers = decoder.generate(prompts, [3] * 5)
        assert len(answers) == 5 and all(1 <= len(a) <= 3 for a in answers), answers
        assert decoder.stats.reused_tokens >= 4 * 10, decoder.stats
        # A prompt longer than the batch is fed in pieces; a budget beyond the share is cut to it.
        [long] = decoder.generate([loaded.prompt("Repeat the text.", "word " * 40)], [1000])
        assert 1 <= len(long) <= 128 - len(loaded.prompt("Repeat the text.", "word " * 40))
        with pytest.raises(TranslationError, match="does not fit"):
            decoder.generate([loaded.prompt("Repeat the text.", "word " * 200)], [10])
        assert decoder.generate([], []) == []
        assert len(decoder.generate([first], [2])[0]) <= 2  # still works after a refused request
    finally:
        decoder.close()
    with pytest.raises(TranslationError, match="closed"):
        decoder.generate([first], [2])
    # What a GPU gets (flash attention where the device has it) runs on a CPU too.
    flash = ParallelDecoder(loaded.model, slots=2, context=256, threads=2, flash_attention=True)
    try:
        assert all(1 <= len(a) <= 2 for a in flash.generate(prompts[:2], [2, 2]))
    finally:
        flash.close()
