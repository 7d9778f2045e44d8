"""A finished speech request's answer in its dialect's formats, made from the task's result.

The subtitle formats (``srt``, ``vtt``) are the task's own readable cues, as every other subtitle
here is made (lines of at most 42 characters, never across a sentence or a language change), not
Whisper's raw segments; the segment formats (``verbose_json``, whisper-asr-webservice's ``json`` and
``tsv``) are the recognised segments with their words.
"""

from __future__ import annotations

import json
from typing import Any

from vodscribe import languages
from vodscribe.engines.results import Cue
from vodscribe.schemas.ai_tasks import ResultSegment, TranscriptionResult
from vodscribe.speech.cues import flatten_text
from vodscribe.speech.subtitle_formats import parse_vtt, to_srt, to_vtt

OPENAI_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
ASR_OUTPUTS = ("txt", "vtt", "srt", "tsv", "json")


def cues(result: TranscriptionResult) -> list[Cue]:
    return parse_vtt(result.vttContent) if result.subtitles else []


def segments(result: TranscriptionResult) -> list[ResultSegment]:
    return list(result.segments or [])


def text(result: TranscriptionResult) -> str:
    return result.concatenated_text


def language_name(result: TranscriptionResult) -> str:
    """The main language in Whisper's way of naming it (``english``); empty where no speech was heard."""
    if not result.languages:
        return ""
    return languages.resolve(result.languages[0]).name.lower()


def language_code(result: TranscriptionResult) -> str:
    """The main language's Whisper code (``en``); empty where no speech was heard."""
    return languages.resolve(result.languages[0]).whisper if result.languages else ""


# --- OpenAI ---------------------------------------------------------------------------------------
def openai_body(
    result: TranscriptionResult, response_format: str, *, task: str, words: bool, segments_too: bool
) -> tuple[str, str]:
    """(media type, body) of ``response_format``; ``words``/``segments_too``: the verbose answer's
    timestamp granularities (segments are always there unless only words were asked)."""
    if response_format == "text":
        return "text/plain; charset=utf-8", text(result) + "\n"
    if response_format == "srt":
        return "text/plain; charset=utf-8", to_srt(cues(result))
    if response_format == "vtt":
        return "text/plain; charset=utf-8", to_vtt(cues(result))
    if response_format == "verbose_json":
        return "application/json", json.dumps(
            verbose(result, task=task, words=words, segments_too=segments_too)
        )
    return "application/json", json.dumps({"text": text(result)})


def verbose(result: TranscriptionResult, *, task: str, words: bool, segments_too: bool) -> dict[str, Any]:
    """OpenAI's ``verbose_json``: task, language (its name), duration, text, segments and words."""
    body: dict[str, Any] = {
        "task": task,
        "language": language_name(result),
        "duration": result.duration or 0.0,
        "text": text(result),
    }
    if segments_too:
        body["segments"] = [_whisper_segment(seg) for seg in segments(result)]
    if words:
        body["words"] = [
            {"word": w.word.strip(), "start": w.start, "end": w.end}
            for seg in segments(result)
            for w in seg.words
        ]
    return body


def _whisper_segment(seg: ResultSegment) -> dict[str, Any]:
    """A segment in Whisper's result shape, which OpenAI's verbose answer and
    whisper-asr-webservice's json both use."""
    return {
        "id": seg.id,
        "seek": int(seg.start * 100),  # Whisper's 10 ms frames
        "start": seg.start,
        "end": seg.end,
        "text": seg.text,
        "tokens": [],  # not kept: the words are
        "temperature": 0.0,
        "avg_logprob": seg.avg_logprob,
        "compression_ratio": seg.compression_ratio,
        "no_speech_prob": seg.no_speech_prob,
    }


# --- whisper-asr-webservice -----------------------------------------------------------------------
def asr_body(result: TranscriptionResult, output: str, *, word_timestamps: bool) -> str:
    """whisper-asr-webservice's ``output`` formats (its writers' layouts; srt and vtt our cues)."""
    if output == "srt":
        return to_srt(cues(result))
    if output == "vtt":
        return to_vtt(cues(result))
    if output == "tsv":
        rows = ["start\tend\ttext"]
        for seg in segments(result):
            line = flatten_text(seg.text).replace("\t", " ")
            rows.append(f"{round(seg.start * 1000)}\t{round(seg.end * 1000)}\t{line}")
        return "\n".join(rows) + "\n"
    if output == "json":
        return json.dumps(asr_json(result, word_timestamps=word_timestamps))
    return "".join(flatten_text(seg.text) + "\n" for seg in segments(result))


def asr_json(result: TranscriptionResult, *, word_timestamps: bool) -> dict[str, Any]:
    """Whisper's result dict, as whisper-asr-webservice writes it: text, segments, language."""
    out = []
    for seg in segments(result):
        item = _whisper_segment(seg)
        if word_timestamps:
            item["words"] = [w.model_dump() for w in seg.words]
        out.append(item)
    return {
        "text": "".join(seg.text for seg in segments(result)),
        "segments": out,
        "language": language_code(result),
    }


def detected(result: TranscriptionResult) -> tuple[str, str, float]:
    """(code, name, confidence) of the language most of the file's speech is in (its share of the
    speech times how sure language ID was, where it was identified)."""
    if not result.languages:
        return "", "", 0.0
    code = result.languages[0]
    confidence = (result.language_confidence or {}).get(code, 1.0)
    language = languages.resolve(code)
    return language.whisper, language.name.lower(), round(confidence, 3)
