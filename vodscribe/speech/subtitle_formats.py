"""Subtitle formats: WebVTT (Gcore's ``vttContent`` layout), SubRip and Gcore's JSON, and strict parsers.

Times are rounded to whole milliseconds the same way everywhere (halves up, as webvtt-py does), so a
cue written as WebVTT and as SRT shows the same times.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta

import srt
import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError
from webvtt.models import Timestamp

from vodscribe.engines.results import Cue
from vodscribe.speech.cues import flatten_text

_BOM = "\ufeff"
#: The first line of a WebVTT file: "WEBVTT", alone or followed by a space or tab and any text.
_VTT_SIGNATURE = re.compile(r"WEBVTT(?:[ \t][^\r\n]*)?")
#: Blank lines end WebVTT blocks (a line of spaces does not).
_BLOCK_BREAK = re.compile(r"(?:\r\n|\r|\n){2,}")
#: Blocks other than cues: comments, style sheets and regions.
_OTHER_BLOCK = re.compile(r"(?:NOTE|STYLE|REGION)(?:[ \t]|$)")
#: SubRip's usual formatting tags, dropped from the cue text.
_SRT_TAGS = re.compile(r"</?(?:b|i|u|s|font)\b[^>]*>", re.IGNORECASE)


class InvalidSubtitlesError(ValueError):
    """Subtitles that are not valid WebVTT or SubRip; the message says what is wrong and where."""


def timecode(seconds: float) -> str:
    """Return ``seconds`` as Gcore's ``HH:MM:SS.mmm`` (rounded to the millisecond, hours may exceed 99)."""
    return str(_timestamp(seconds))


def to_vtt(cues: Sequence[Cue]) -> str:
    """Render cues exactly like Gcore's ``vttContent``.

    ``"WEBVTT\\n\\n"``, then per cue ``"{i}\\n{start} --> {end}\\n{text}\\n\\n"`` numbered from 1. The
    text has ``&``, ``<`` and ``>`` escaped, and blank lines (which would end the cue) are dropped.
    """
    blocks = (
        f"{index}\n{timecode(cue.start)} --> {timecode(cue.end)}\n{_vtt_text(cue.text)}\n\n"
        for index, cue in enumerate(cues, start=1)
    )
    return "WEBVTT\n\n" + "".join(blocks)


def to_srt(cues: Iterable[Cue]) -> str:
    """Render cues as SubRip, numbered from 1."""
    subtitles = [
        srt.Subtitle(
            index=index,
            start=timedelta(milliseconds=_milliseconds(cue.start)),
            end=timedelta(milliseconds=_milliseconds(cue.end)),
            content=cue.text,
        )
        for index, cue in enumerate(cues, start=1)
    ]
    return str(srt.compose(subtitles))


def to_subtitles_json(cues: Iterable[Cue]) -> list[dict[str, str]]:
    """Render cues as Gcore's ``subtitles`` list; each text is one line (see ``flatten_text``)."""
    return [
        {"start_time": timecode(cue.start), "end_time": timecode(cue.end), "text": flatten_text(cue.text)}
        for cue in cues
    ]


def parse_vtt(text: str) -> list[Cue]:
    """Parse WebVTT strictly: the ``WEBVTT`` header, well-formed blocks and timestamps.

    Cue tags (``<i>``, ``<v Speaker>``...) are removed and character references (``&amp;``...) are
    decoded. Every cue must end after it starts, and cues must not start before the previous one (as
    the WebVTT specification requires).

    :raises InvalidSubtitlesError: on anything malformed, with a message saying what.
    """
    body = text.removeprefix(_BOM)
    first_line = body.splitlines()[0] if body else ""
    if not _VTT_SIGNATURE.fullmatch(first_line):
        raise InvalidSubtitlesError("Not WebVTT: the first line must be 'WEBVTT'.")
    _check_blocks(body)
    try:
        captions = webvtt.from_string(body, strict=True).captions
    except (MalformedFileError, MalformedCaptionError) as error:
        raise InvalidSubtitlesError(f"Invalid WebVTT: {error}") from error
    cues = [
        Cue(
            start=caption.start_time.in_milliseconds() / 1000,
            end=caption.end_time.in_milliseconds() / 1000,
            text=html.unescape(caption.text),
        )
        for caption in captions
    ]
    _check_times(cues, "WebVTT")
    _check_order(cues)
    return cues


def parse_srt(text: str) -> list[Cue]:
    """Parse SubRip strictly; formatting tags (``<i>``, ``<font ...>``...) are removed from the text.

    Every cue must end after it starts; cues are returned sorted by start time.

    :raises InvalidSubtitlesError: on anything malformed, with a message saying what.
    """
    try:
        subtitles = list(srt.parse(text.removeprefix(_BOM)))
    except (srt.SRTParseError, srt.TimestampParseError) as error:
        raise InvalidSubtitlesError(f"Invalid SubRip: {error}") from error
    cues = [
        Cue(
            start=subtitle.start.total_seconds(),
            end=subtitle.end.total_seconds(),
            text=_SRT_TAGS.sub("", subtitle.content),
        )
        for subtitle in subtitles
    ]
    _check_times(cues, "SubRip")
    return sorted(cues, key=lambda cue: (cue.start, cue.end))


def parse_subtitles(text: str) -> list[Cue]:
    """Parse WebVTT if ``text`` starts with ``WEBVTT`` (after an optional BOM), SubRip otherwise.

    :raises InvalidSubtitlesError: if the text is not valid in the format it was taken for.
    """
    if text.removeprefix(_BOM).startswith("WEBVTT"):
        return parse_vtt(text)
    return parse_srt(text)


def _timestamp(seconds: float) -> Timestamp:
    try:
        return Timestamp.from_seconds(seconds)
    except MalformedCaptionError as error:
        raise ValueError(f"Invalid subtitle time {seconds!r}: {error}") from error


def _milliseconds(seconds: float) -> int:
    return _timestamp(seconds).in_milliseconds()


def _vtt_text(text: str) -> str:
    """Escape cue text for WebVTT; ``-->`` cannot survive as ``>`` is escaped."""
    lines = (line for line in text.splitlines() if line.strip())
    return "\n".join(html.escape(line, quote=False) for line in lines)


def _check_blocks(body: str) -> None:
    """Reject blocks that are neither cues nor comments, styles or regions (parsers skip them)."""
    for block in _BLOCK_BREAK.split(body.strip("\r\n"))[1:]:
        lines = block.splitlines()
        if not (_OTHER_BLOCK.match(lines[0]) or any("-->" in line for line in lines[:2])):
            raise InvalidSubtitlesError(f"Invalid WebVTT: not a cue block: {block!r}")


def _check_times(cues: Sequence[Cue], kind: str) -> None:
    for number, cue in enumerate(cues, start=1):
        if cue.end <= cue.start:
            raise InvalidSubtitlesError(
                f"Invalid {kind}: cue {number} ends at {timecode(cue.end)}, "
                f"not after its start {timecode(cue.start)}."
            )


def _check_order(cues: Sequence[Cue]) -> None:
    for number, (previous, cue) in enumerate(itertools.pairwise(cues), start=2):
        if cue.start < previous.start:
            raise InvalidSubtitlesError(
                f"Invalid WebVTT: cue {number} starts at {timecode(cue.start)}, "
                f"before the cue ahead of it ({timecode(previous.start)})."
            )
