"""Tests for vodscribe.speech.subtitle_formats: WebVTT / SRT / Gcore JSON output and strict parsing."""

from __future__ import annotations

import pytest
import webvtt

from vodscribe.engines.results import Cue, SpeechSegment, Word
from vodscribe.speech.cues import build_cues
from vodscribe.speech.subtitle_formats import (
    InvalidSubtitlesError,
    parse_srt,
    parse_subtitles,
    parse_vtt,
    timecode,
    to_srt,
    to_subtitles_json,
    to_vtt,
)

CUES = [
    Cue(start=0.5, end=2.0, text="Hello there,\nhow are you?"),
    Cue(start=2.08, end=4.25, text="Tom & Jerry <3"),
]

VTT = (
    "WEBVTT\n\n"
    "1\n00:00:00.500 --> 00:00:02.000\nHello there,\nhow are you?\n\n"
    "2\n00:00:02.080 --> 00:00:04.250\nTom &amp; Jerry &lt;3\n\n"
)


def spoken_cues() -> list[Cue]:
    """Cues built from realistic speech, with times that are not round numbers."""
    words, time = [], 0.137
    text = "Hello everyone, and welcome. Today we talk about subtitles & captions. Are you ready? Let's go."
    for token in text.split():
        words.append(Word(start=time, end=time + 0.273, text=" " + token))
        time += 0.331 + (0.6 if token.endswith((".", "?")) else 0.0)
    segment = SpeechSegment(
        start=words[0].start, end=words[-1].end, text=text, language="en", words=tuple(words)
    )
    return build_cues([segment])


# --- timecode -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "00:00:00.000"),
        (1.5, "00:00:01.500"),
        (61.25, "00:01:01.250"),
        (3723.004, "01:02:03.004"),
        (0.0005, "00:00:00.001"),
        (59.9996, "00:01:00.000"),
        (1.0004, "00:00:01.000"),
        (100 * 3600 + 0.25, "100:00:00.250"),
    ],
)
def test_timecode(seconds: float, expected: str) -> None:
    assert timecode(seconds) == expected


@pytest.mark.parametrize("seconds", [-0.5, float("nan"), float("inf")])
def test_timecode_rejects_impossible_times(seconds: float) -> None:
    with pytest.raises(ValueError):
        timecode(seconds)


# --- writing --------------------------------------------------------------------------------------


def test_to_vtt_exact_gcore_layout() -> None:
    assert to_vtt(CUES) == VTT


def test_to_vtt_empty() -> None:
    assert to_vtt([]) == "WEBVTT\n\n"


def test_to_vtt_escapes_what_would_break_the_file() -> None:
    vtt = to_vtt([Cue(0.0, 1.0, "a --> b\n\n<i>c</i> & d")])
    assert vtt == "WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.000\na --&gt; b\n&lt;i&gt;c&lt;/i&gt; &amp; d\n\n"
    assert parse_vtt(vtt) == [Cue(0.0, 1.0, "a --> b\n<i>c</i> & d")]


def test_to_vtt_is_valid_for_webvtt_py() -> None:
    captions = webvtt.from_string(to_vtt(CUES), strict=True).captions
    assert [(c.start, c.end, c.identifier) for c in captions] == [
        ("00:00:00.500", "00:00:02.000", "1"),
        ("00:00:02.080", "00:00:04.250", "2"),
    ]


def test_to_srt() -> None:
    assert to_srt(CUES) == (
        "1\n00:00:00,500 --> 00:00:02,000\nHello there,\nhow are you?\n\n"
        "2\n00:00:02,080 --> 00:00:04,250\nTom & Jerry <3\n\n"
    )
    assert to_srt([]) == ""


def test_to_srt_rounds_like_vtt() -> None:
    cue = Cue(start=1.0006, end=2.9996, text="x")
    assert "00:00:01,001 --> 00:00:03,000" in to_srt([cue])
    assert "00:00:01.001 --> 00:00:03.000" in to_vtt([cue])


def test_to_subtitles_json() -> None:
    assert to_subtitles_json(CUES) == [
        {"start_time": "00:00:00.500", "end_time": "00:00:02.000", "text": "Hello there, how are you?"},
        {"start_time": "00:00:02.080", "end_time": "00:00:04.250", "text": "Tom & Jerry <3"},
    ]


def test_to_subtitles_json_keeps_cjk_without_spaces() -> None:
    [item] = to_subtitles_json([Cue(0.0, 1.0, "大家好，\n欢迎。")])
    assert item["text"] == "大家好，欢迎。"


# --- round trips ----------------------------------------------------------------------------------


def test_vtt_round_trip_of_built_cues() -> None:
    cues = spoken_cues()
    assert len(cues) > 1
    assert parse_vtt(to_vtt(cues)) == cues


def test_srt_round_trip_of_built_cues() -> None:
    cues = spoken_cues()
    assert parse_srt(to_srt(cues)) == cues
    assert parse_subtitles(to_srt(cues)) == cues


def test_round_trip_of_cjk_and_markup_characters() -> None:
    cues = [Cue(1.0, 2.0, "大家好，欢迎来到我们的频道。"), Cue(2.5, 3.5, "1 < 2 && 3 > 2")]
    assert parse_vtt(to_vtt(cues)) == cues
    assert parse_srt(to_srt(cues)) == cues


# --- parsing WebVTT -------------------------------------------------------------------------------


def test_parse_vtt_reads_the_full_syntax() -> None:
    text = (
        "\ufeffWEBVTT - a title\n"
        "Kind: captions\n\n"
        "NOTE a comment\n\n"
        "STYLE\n::cue { color: yellow }\n\n"
        "intro\n"
        "00:01.000 --> 00:02.500 align:start line:0\n"
        "<v Bob>Hi &amp; <b>welcome</b></v>\n\n"
        "01:00:00.000 --> 01:00:01.000\n"
        "two\nlines\n"
    )
    assert parse_vtt(text) == [
        Cue(start=1.0, end=2.5, text="Hi & welcome"),
        Cue(start=3600.0, end=3601.0, text="two\nlines"),
    ]


def test_parse_vtt_empty_file() -> None:
    assert parse_vtt("WEBVTT\n") == []
    assert parse_vtt("WEBVTT\n\n") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "WEBVTT"),
        ("1\n00:00:01.000 --> 00:00:02.000\nno header\n", "WEBVTT"),
        ("WEBVTTX\n\n00:00:01.000 --> 00:00:02.000\nbad header\n", "WEBVTT"),
        ("webvtt\n\n00:00:01.000 --> 00:00:02.000\nlower case\n", "WEBVTT"),
        ("WEBVTT\n\n00:00:01,000 --> 00:00:02,000\ncomma\n", "Invalid WebVTT"),
        ("WEBVTT\n\n00:00:01.000 --> 00:00:61.000\nseconds\n", "Invalid WebVTT"),
        ("WEBVTT\n\n0:0:1.0 --> 00:00:02.000\nshort fields\n", "Invalid WebVTT"),
        ("WEBVTT\n\n00:00:01.000 -> 00:00:02.000\narrow\n", "not a cue block"),
        ("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nok\n\nstray text\n", "not a cue block"),
        ("WEBVTT\n\n00:00:01.000 --> 00:00:02.000 size:200%\nsetting\n", "Invalid WebVTT"),
        # These may be caught by webvtt-py (0.7 checks more) or by us; either way "Invalid WebVTT".
        ("WEBVTT\n\n00:00:02.000 --> 00:00:01.000\nbackwards\n", "Invalid WebVTT"),
        ("WEBVTT\n\n00:00:02.000 --> 00:00:02.000\nzero length\n", "Invalid WebVTT"),
        (
            "WEBVTT\n\n00:00:05.000 --> 00:00:06.000\nlate\n\n00:00:01.000 --> 00:00:02.000\nearly\n",
            "Invalid WebVTT: cue 2 starts at 00:00:01.000",
        ),
    ],
)
def test_parse_vtt_rejects_malformed(text: str, message: str) -> None:
    with pytest.raises(InvalidSubtitlesError, match=message):
        parse_vtt(text)


def test_invalid_subtitles_error_is_a_value_error() -> None:
    assert issubclass(InvalidSubtitlesError, ValueError)


# --- parsing SubRip -------------------------------------------------------------------------------


def test_parse_srt_strips_formatting_and_sorts() -> None:
    text = (
        "2\n00:00:03,000 --> 00:00:04,000\n<i>second</i>\n\n"
        '1\n00:00:01,000 --> 00:00:02,000\n<font color="red">first</font>\nline two\n'
    )
    assert parse_srt(text) == [Cue(1.0, 2.0, "first\nline two"), Cue(3.0, 4.0, "second")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("just some text", "Invalid SubRip"),
        ("1\n00:00:02,000 --> 00:00:01,000\nbackwards\n", "not after its start"),
        ("1\n00:00:01,000 --> 00:00:01,000\nzero length\n", "not after its start"),
        ("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:0x,000 --> 00:00:03,000\nbad\n", "Invalid SubRip"),
        ("1\n00:00:01,000 -> 00:00:02,000\nbad arrow\n", "Invalid SubRip"),
    ],
)
def test_parse_srt_rejects_malformed(text: str, message: str) -> None:
    with pytest.raises(InvalidSubtitlesError, match=message):
        parse_srt(text)


# --- picking the format ---------------------------------------------------------------------------


def test_parse_subtitles_picks_the_format() -> None:
    assert parse_subtitles(VTT) == CUES
    assert parse_subtitles("\ufeff" + VTT) == CUES
    assert parse_subtitles("1\n00:00:01,000 --> 00:00:02,000\nhi\n") == [Cue(1.0, 2.0, "hi")]
    assert parse_subtitles("\ufeff1\n00:00:01,000 --> 00:00:02,000\nhi\n") == [Cue(1.0, 2.0, "hi")]


def test_parse_subtitles_does_not_fall_back_from_broken_vtt() -> None:
    with pytest.raises(InvalidSubtitlesError, match="Invalid WebVTT"):
        parse_subtitles("WEBVTT\n\n00:00:01,000 --> 00:00:02,000\nSRT times in a VTT file\n")
