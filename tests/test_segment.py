"""Tests for vodscribe.speech.cues: ASR words -> subtitle cues (Netflix timed-text rules)."""

from __future__ import annotations

import itertools

import pytest

from vodscribe.engines.results import Cue, SpeechSegment, Word
from vodscribe.speech.cues import build_cues, concatenated_text, flatten_text

EPS = 1e-6
GAP = 2 / 25
MIN_DURATION = 5 / 6

ENGLISH = (
    "Welcome back to the channel. Today we are going to look at how subtitles are made. "
    "It is easier than you might think. First, the audio is transcribed by a speech model. "
    "Every word gets its own timestamp. Then the words are grouped into short cues. "
    "Each cue must be easy to read. Let's get started. See you next time."
)


def speak(
    text: str,
    start: float = 0.0,
    *,
    word: float = 0.3,
    gap: float = 0.05,
    sentence_pause: float = 0.4,
) -> tuple[Word, ...]:
    """Whisper-like words (leading space kept) spoken at a steady pace, pausing after sentences."""
    words: list[Word] = []
    time = start
    for token in text.split():
        words.append(Word(start=time, end=time + word, text=" " + token))
        time += word + gap
        if token[-1] in ".?!":
            time += sentence_pause
    return tuple(words)


def segment(words: tuple[Word, ...], language: str = "en") -> SpeechSegment:
    text = "".join(w.text for w in words)
    return SpeechSegment(start=words[0].start, end=words[-1].end, text=text, language=language, words=words)


def speak_cjk(tokens: list[str], start: float = 0.0, *, per_char: float = 0.2) -> tuple[Word, ...]:
    """CJK words as Whisper gives them: no spaces, timed by their length."""
    words: list[Word] = []
    time = start
    for token in tokens:
        words.append(Word(start=time, end=time + per_char * len(token), text=token))
        time += per_char * len(token) + 0.02
    return tuple(words)


def lines(cue: Cue) -> list[str]:
    return cue.text.split("\n")


def assert_netflix_rules(
    cues: list[Cue], *, max_line_chars: int = 42, max_lines: int = 2, max_duration: float = 7.0
) -> None:
    """The hard rules every output must follow, whatever the input."""
    for cue in cues:
        assert cue.text.strip(), cue
        assert cue.start < cue.end, cue
        assert cue.end - cue.start <= max_duration + EPS, cue
        assert len(lines(cue)) <= max_lines, cue
        for line in lines(cue):
            assert line == line.strip(), cue
            assert len(line) <= max_line_chars or " " not in line, cue
    for previous, cue in itertools.pairwise(cues):
        assert cue.start >= previous.end + GAP - EPS, (previous, cue)


def ends_sentence(text: str) -> bool:
    return text.rstrip()[-1] in ".?!。？！"


# --- a realistic English monologue -----------------------------------------------------------------


def test_english_monologue_follows_the_rules() -> None:
    words = speak(ENGLISH, start=1.0)
    assert len(words) == 60
    cues = build_cues([segment(words)])

    assert_netflix_rules(cues)
    assert concatenated_text(cues) == ENGLISH
    assert cues[0].start == pytest.approx(1.0)
    assert all(cue.end - cue.start >= MIN_DURATION - EPS for cue in cues)


def test_english_monologue_breaks_only_at_sentence_ends() -> None:
    # Every sentence fits in a cue, so no cue should end in the middle of one.
    cues = build_cues([segment(speak(ENGLISH))])
    assert all(ends_sentence(cue.text) for cue in cues), [cue.text for cue in cues]
    # A sentence that needs two lines gets them to itself, no half sentence on a line.
    for cue in cues:
        sentences_inside = sum(ends_sentence(word) for word in cue.text.split()[:-1])
        if sentences_inside and len(lines(cue)) == 2:
            assert ends_sentence(lines(cue)[0]), cue


def test_reading_speed_is_kept_when_there_is_room() -> None:
    # Fast speech (0.1 s a word) followed by 5 s of silence: the cue stays up long enough to read.
    words = speak("This sentence is spoken really fast.", word=0.1, gap=0.0)
    [cue] = build_cues([segment(words)])
    assert len(cue.text) / (cue.end - cue.start) <= 17.0 + EPS
    assert cue.start == pytest.approx(0.0)


def test_reading_speed_never_overlaps_the_next_cue() -> None:
    fast = speak("This sentence is spoken really fast.", word=0.1, gap=0.0)
    after = speak("And this one comes right after it.", start=fast[-1].end + 0.2)
    cues = build_cues([segment(fast), segment(after)], max_lines=1)
    assert [cue.text for cue in cues] == [
        "This sentence is spoken really fast.",
        "And this one comes right after it.",
    ]
    assert cues[0].end == pytest.approx(cues[1].start - GAP)
    assert_netflix_rules(cues)


# --- where cues break ------------------------------------------------------------------------------


def test_prefers_sentence_end_to_filling_the_cue() -> None:
    text = "We met at noon. Then we walked down to the old harbour to watch the fishing boats come in."
    cues = build_cues([segment(speak(text))])
    assert [cue.text.replace("\n", " ") for cue in cues] == [
        "We met at noon.",
        "Then we walked down to the old harbour to watch the fishing boats come in.",
    ]


def test_pairs_short_sentences_one_per_line() -> None:
    cues = build_cues([segment(speak("Are you ready? Yes, I am."))])
    assert [cue.text for cue in cues] == ["Are you ready? Yes, I am."]
    cues = build_cues(
        [segment(speak("Are you ready to leave for the airport? Yes, I have packed everything."))]
    )
    assert [cue.text for cue in cues] == [
        "Are you ready to leave for the airport?\nYes, I have packed everything."
    ]


def test_long_sentence_breaks_at_a_clause() -> None:
    text = (
        "When the last train had left the station and the lights went out, "
        "we walked home through the quiet streets of the old town"
    )
    cues = build_cues([segment(speak(text))])
    assert len(cues) == 2
    assert cues[0].text.endswith("out,")
    assert concatenated_text(cues) == text
    assert_netflix_rules(cues)


def test_without_punctuation_breaks_at_the_long_pause() -> None:
    first = "so we packed the car and drove all the way up to the mountains"
    second = "where we stayed in a small cabin by the lake for a week"
    words = speak(first) + speak(second, start=speak(first)[-1].end + 0.8)
    cues = build_cues([segment(words)])
    assert [concatenated_text([cue]) for cue in cues] == [first, second]


def test_long_silence_splits_even_a_short_text() -> None:
    words = speak("I really do not know") + speak("maybe tomorrow", start=5.0)
    cues = build_cues([segment(words)])
    assert [cue.text for cue in cues] == ["I really do not know", "maybe tomorrow"]
    assert cues[0].end < 5.0 - GAP + EPS
    assert cues[1].start == pytest.approx(5.0)


def test_short_pause_does_not_split_a_short_sentence() -> None:
    words = speak("I think") + speak("you are right.", start=1.2)
    assert [cue.text for cue in build_cues([segment(words)])] == ["I think you are right."]


def test_max_duration_splits_slow_speech() -> None:
    # 20 words at 0.6 s each: 12 s of speech, fits the lines but not the 7 s limit.
    text = " ".join(["slowly"] * 19 + ["done."])
    cues = build_cues([segment(speak(text, word=0.5, gap=0.1))])
    assert len(cues) == 2
    assert_netflix_rules(cues)
    assert concatenated_text(cues) == text


def test_a_word_longer_than_max_duration_is_cut_to_it() -> None:
    [cue] = build_cues([segment((Word(start=2.0, end=11.0, text=" Hmmmmmmmm."),))])
    assert (cue.start, cue.end) == (2.0, 9.0)


def test_never_splits_inside_a_word() -> None:
    words = speak(ENGLISH)
    cues = build_cues([segment(words)], max_line_chars=20)
    assert_netflix_rules(cues, max_line_chars=20)
    assert [w for cue in cues for w in cue.text.split()] == [w.text.strip() for w in words]


# --- languages ------------------------------------------------------------------------------------


def test_language_change_starts_a_new_cue() -> None:
    german = speak("Guten Tag, wie geht es")
    english = speak("you today?", start=german[-1].end + 0.05)
    cues = build_cues([segment(german, "de"), segment(english, "en")])
    assert [cue.text for cue in cues] == ["Guten Tag, wie geht es", "you today?"]
    assert_netflix_rules(cues)


def test_segments_of_one_language_are_joined() -> None:
    first = speak("Good morning,")
    second = speak("how are you today?", start=first[-1].end + 0.05)
    cues = build_cues([segment(first), segment(second)])
    assert [cue.text for cue in cues] == ["Good morning, how are you today?"]


def test_language_change_back_and_forth() -> None:
    parts = [("en", "Hello there."), ("de", "Hallo."), ("en", "Nice to meet you.")]
    segments, start = [], 0.0
    for language, text in parts:
        words = speak(text, start=start)
        segments.append(segment(words, language))
        start = words[-1].end + 0.1
    assert [cue.text for cue in build_cues(segments)] == [text for _, text in parts]


# --- CJK -------------------------------------------------------------------------------------------

CHINESE = ["大家", "好", "，", "欢迎", "来到", "我们", "的", "频道", "。"]
CHINESE += ["今天", "我们", "来", "聊聊", "字幕", "是", "怎么", "做", "的", "。"]


def test_chinese_gets_no_spaces() -> None:
    cues = build_cues([segment(speak_cjk(CHINESE), "zh")])
    assert [cue.text for cue in cues] == ["大家好，欢迎来到我们的频道。今天我们来聊聊字幕是怎么做的。"]
    assert concatenated_text(cues) == "".join(CHINESE)


def test_chinese_lines_are_measured_in_characters() -> None:
    cues = build_cues([segment(speak_cjk(CHINESE), "zh")], max_line_chars=16)
    assert [cue.text for cue in cues] == ["大家好，欢迎来到我们的频道。\n今天我们来聊聊字幕是怎么做的。"]
    assert_netflix_rules(cues, max_line_chars=16)


def test_chinese_segments_are_joined_without_spaces() -> None:
    # Whisper often gives the first word of a segment a leading space, even in Chinese.
    first = speak_cjk(["你好", "。"])
    second = tuple(
        Word(w.start, w.end, (" " if i == 0 else "") + w.text)
        for i, w in enumerate(speak_cjk(["谢谢", "你", "。"], start=first[-1].end + 0.1))
    )
    cues = build_cues([segment(first, "zh"), segment(second, "zh")])
    assert [cue.text for cue in cues] == ["你好。谢谢你。"]


def test_chinese_without_word_timestamps() -> None:
    text = "大家好，欢迎来到我们的频道。今天我们来聊聊字幕是怎么做的。"
    cues = build_cues([SpeechSegment(start=0.0, end=6.0, text=text, language="zh")], max_line_chars=10)
    assert_netflix_rules(cues, max_line_chars=10)
    assert concatenated_text(cues) == text
    assert all(ends_sentence(cue.text) or cue.text.endswith("，") for cue in cues)
    assert cues[0].start == 0.0 and cues[-1].end == pytest.approx(6.0)


def test_japanese_mixed_with_latin_keeps_the_latin_spaces() -> None:
    words = (
        Word(0.0, 0.5, "今日は"),
        Word(0.5, 1.0, " Python"),
        Word(1.0, 1.4, " を"),
        Word(1.4, 2.0, "使います。"),
    )
    [cue] = build_cues([segment(words, "ja")])
    assert cue.text == "今日は Python を使います。"


# --- clean-up ------------------------------------------------------------------------------------


def test_hallucination_loop_is_collapsed() -> None:
    segments = [segment(speak("Thank you for watching.", start=2.0 * i)) for i in range(5)]
    cues = build_cues(segments)
    assert [cue.text for cue in cues] == ["Thank you for watching."]


def test_loop_detection_ignores_case_and_punctuation() -> None:
    texts = ["Thank you.", "thank you", "Thank you!", "Bye."]
    cues = build_cues([segment(speak(text, start=2.0 * i)) for i, text in enumerate(texts)], max_lines=1)
    assert [cue.text for cue in cues] == ["Thank you.", "Bye."]


def test_loop_detection_reads_the_words() -> None:
    # Segments whose text field is empty are compared by their words, not collapsed as "identical".
    texts = ["One.", "Two.", "Three."]
    segments = [SpeechSegment(2.0 * i, 2.0 * i + 1, "", "en", speak(t, 2.0 * i)) for i, t in enumerate(texts)]
    assert [cue.text for cue in build_cues(segments, max_lines=1, max_line_chars=6)] == texts


def test_a_repeat_twice_is_kept() -> None:
    cues = build_cues([segment(speak("No.", start=0.0)), segment(speak("No.", start=3.0))])
    assert [cue.text for cue in cues] == ["No.", "No."]


def test_empty_input_and_empty_words_give_no_cues() -> None:
    assert build_cues([]) == []
    assert build_cues([SpeechSegment(0.0, 1.0, "  ", "en")]) == []
    assert build_cues([segment((Word(0.0, 0.5, " "), Word(0.5, 1.0, "")))]) == []


# --- line breaking --------------------------------------------------------------------------------


def test_a_cue_that_fits_one_line_stays_one_line() -> None:
    text = "This line has exactly forty-two characters"
    assert len(text) == 42
    [cue] = build_cues([segment(speak(text))])
    assert cue.text == text


def test_two_lines_are_balanced_without_orphans() -> None:
    # Greedy filling would leave "weekend" alone on the second line.
    [cue] = build_cues([segment(speak("I really want to go to the beach this weekend"))])
    top, bottom = lines(cue)
    assert " " in top and " " in bottom
    assert abs(len(top) - len(bottom)) <= 6
    assert len(top) <= len(bottom)


def test_line_break_prefers_punctuation() -> None:
    [cue] = build_cues([segment(speak("After the long winter, the river finally began to thaw"))])
    assert lines(cue) == ["After the long winter,", "the river finally began to thaw"]


def test_a_very_long_word_stands_alone_on_its_line() -> None:
    word = "Rindfleischetikettierungsueberwachungsaufgabenuebertragungsgesetz"
    cues = build_cues([segment(speak(f"Das {word} ist lang."), "de")])
    assert_netflix_rules(cues)
    assert any(word in lines(cue) for cue in cues)
    assert concatenated_text(cues) == f"Das {word} ist lang."


def test_fallback_without_word_timestamps() -> None:
    text = "This segment has no word timestamps, so its words are spread over its span. It is split anyway."
    cues = build_cues([SpeechSegment(start=10.0, end=20.0, text=" " + text, language="en")])
    assert_netflix_rules(cues)
    assert concatenated_text(cues) == text
    assert cues[0].start == 10.0 and cues[-1].end <= 20.0 + EPS
    assert len(cues) == 2


# --- timing ---------------------------------------------------------------------------------------


def test_minimum_duration_extends_into_silence() -> None:
    cues = build_cues([segment((Word(1.0, 1.2, " Yes."),)), segment((Word(4.0, 4.5, " Good."),))])
    assert cues[0].start == 1.0
    assert cues[0].end - cues[0].start >= MIN_DURATION - EPS


def test_minimum_duration_never_overlaps_the_next_cue() -> None:
    # A language change forces two cues; the first has no room for its 5/6 s.
    cues = build_cues([segment((Word(1.0, 1.2, " Yes."),), "en"), segment((Word(1.5, 1.9, " Ja?"),), "de")])
    assert [cue.text for cue in cues] == ["Yes.", "Ja?"]
    assert cues[0].end == pytest.approx(1.5 - GAP)
    assert cues[1].start == 1.5
    assert_netflix_rules(cues)


def test_touching_cues_keep_a_two_frame_gap() -> None:
    first = (Word(0.0, 3.0, " First sentence, which is long enough to fill a line."),)
    second = (Word(3.0, 6.0, " Second one starts right away."),)
    cues = build_cues([segment(first), segment(second)])
    assert len(cues) == 2
    assert cues[1].start == 3.0
    assert cues[0].end == pytest.approx(3.0 - GAP)


def test_short_gaps_are_closed_to_two_frames() -> None:
    first = speak("The first sentence is here.")
    second = speak("And the second one follows it closely.", start=first[-1].end + 0.35)
    cues = build_cues([segment(first), segment(second)], max_lines=1)
    assert len(cues) == 2
    assert cues[1].start - cues[0].end == pytest.approx(GAP)


def test_overlapping_timestamps_still_give_valid_cues() -> None:
    words = (Word(1.0, 2.0, " Overlapping"), Word(0.5, 1.5, " words."), Word(1.2, 1.3, " Again."))
    cues = build_cues([segment(words)], max_line_chars=12, max_lines=1)
    assert_netflix_rules(cues, max_line_chars=12, max_lines=1)
    assert concatenated_text(cues) == "Overlapping words. Again."


def test_times_are_whole_milliseconds() -> None:
    for cue in build_cues([segment(speak(ENGLISH, start=0.12345))]):
        assert round(cue.start * 1000) / 1000 == cue.start
        assert round(cue.end * 1000) / 1000 == cue.end


def test_unsorted_segments_are_sorted() -> None:
    first = segment(speak("First one.", start=0.0))
    second = segment(speak("Second one.", start=3.0))
    assert [cue.text for cue in build_cues([second, first])] == ["First one.", "Second one."]


@pytest.mark.parametrize(
    "options",
    [{"max_line_chars": 0}, {"max_lines": 0}, {"min_duration": 8.0}, {"max_cps": 0.0}, {"frame_gap": -1.0}],
)
def test_invalid_options_raise(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        build_cues([], **options)  # type: ignore[arg-type]


# --- text -----------------------------------------------------------------------------------------


def test_concatenated_text_of_segments_and_cues() -> None:
    segments = [
        SpeechSegment(0.0, 1.0, " Hello  there,", "en"),
        SpeechSegment(1.0, 2.0, " general\nKenobi.", "en"),
    ]
    assert concatenated_text(segments) == "Hello there, general Kenobi."
    assert (
        concatenated_text([Cue(0.0, 1.0, "你好，\n世界。"), Cue(1.0, 2.0, "Hello")]) == "你好，世界。 Hello"
    )
    assert concatenated_text([]) == ""


def test_flatten_text() -> None:
    assert flatten_text("two\nlines") == "two lines"
    assert flatten_text(" 今天 我们\n来聊聊 ") == "今天我们来聊聊"
    assert flatten_text("用 Python 写") == "用 Python 写"


def test_abbreviation_full_stop_does_not_end_a_sentence() -> None:
    words = [
        (" And", 12.22, 12.40),
        (" Mr.", 12.40, 12.54),
        (" John", 12.62, 12.90),
        (" Dashwood", 12.90, 13.40),
        (" had", 13.40, 13.60),
        (" then", 13.60, 13.90),
        (" leisure.", 13.90, 14.50),
    ]
    seg = SpeechSegment(
        start=12.22,
        end=14.5,
        text="And Mr. John Dashwood had then leisure.",
        language="en",
        words=tuple(Word(s, e, t) for t, s, e in words),
    )
    cues = build_cues([seg])
    assert [c.text for c in cues] == ["And Mr. John Dashwood had then leisure."]
