"""Language switches: does the new language start at the first word after a switch?

Usage (from the repository root, in the project's virtual environment)::

    python bench/switch.py [--data DIR] [--pauses 0.5,1.0] [--languages en,de,...]

For every ordered pair of the test data's languages it builds a clip: the first clip of language A,
a pause, the first clip of language B, so that P seconds lie between the speech edges Silero VAD
finds (each clip keeps 0.1 s of its own audio past those edges, where word onsets and endings
too quiet for VAD still are, and the rest of the pause is silence), and transcribes it with the service's
pipeline (``transcribe_file``, language detected). Each recognised word belongs to A before the
middle of the pause and to B after it; a word decoded as part of a run in the other language is a
word in the wrong language. Prints one JSON document on stdout, progress on stderr; see
bench/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import machine
import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from vodscribe.engines.whisper import SAMPLE_RATE, get_engine
from vodscribe.media.probe import decode_audio, probe
from vodscribe.speech.transcription import transcribe_file

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "testdata"
#: Speech edges without padding, where the pause is measured from.
EDGES = VadOptions(min_silence_duration_ms=500, speech_pad_ms=0)
#: Seconds of each clip kept past its speech edges (part of the pause).
KEEP = 0.1


def speech_only(path: Path) -> np.ndarray:
    audio = decode_audio(path, probe(path))
    stamps = get_speech_timestamps(audio, EDGES, sampling_rate=SAMPLE_RATE)
    if not stamps:
        raise SystemExit(f"{path}: no speech found")
    keep = round(KEEP * SAMPLE_RATE)
    return audio[max(0, stamps[0]["start"] - keep) : stamps[-1]["end"] + keep]


def first_clips(data: Path, languages: list[str] | None) -> dict[str, Path]:
    """The first clip the manifest lists for each single language (≤ 30 s of audio)."""
    chosen: dict[str, Path] = {}
    for item in json.loads((data / "manifest.json").read_text()):
        lang, path = item["lang"], data / item["file"]
        if lang == "multi" or lang in chosen or (languages and lang not in languages):
            continue
        if path.suffix in (".wav", ".flac", ".aiff", ".mp3") and probe(path).duration <= 30:
            chosen[lang] = path
    return chosen


def write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())


def switch(
    engine: Any, first: str, a: np.ndarray, second: str, b: np.ndarray, pause: float
) -> dict[str, Any]:
    silence = np.zeros(round((pause - 2 * KEEP) * SAMPLE_RATE), dtype=np.float32)
    clip = np.concatenate([a, silence, b])
    at = (len(a) / SAMPLE_RATE) - KEEP + pause / 2  # the middle of the pause
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "switch.wav"
        write_wav(path, clip)
        began = time.perf_counter()
        transcript = transcribe_file(path, engine)
        seconds = time.perf_counter() - began
    wrong_a = wrong_b = words_a = words_b = 0
    for seg in transcript.segments:
        for word in seg.words:
            in_a = (word.start + word.end) / 2 < at
            words_a += in_a
            words_b += not in_a
            if in_a and seg.language != first:
                wrong_a += 1
            if not in_a and seg.language != second:
                wrong_b += 1
    return {
        "from": first,
        "to": second,
        "pause_s": pause,
        "duration_s": round(len(clip) / SAMPLE_RATE, 2),
        "words_before": words_a,
        "words_after": words_b,
        "wrong_before": wrong_a,
        "wrong_after": wrong_b,
        "languages": list(transcript.languages),
        "both_found": first in transcript.languages and second in transcript.languages,
        "processing_s": round(seconds, 3),
        "text": " | ".join(f"[{s.language}] {s.text}" for s in transcript.segments)[:300],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="DIR")
    parser.add_argument(
        "--pauses", default="0.5,1.0", help="seconds of silence at the switch, comma-separated"
    )
    parser.add_argument("--languages", help="comma-separated subset (default: every language of the data)")
    parser.add_argument(
        "--clip",
        action="append",
        default=[],
        metavar="LANG=FILE",
        help="use this clip (relative to --data) for LANG instead of the manifest's first",
    )
    args = parser.parse_args(argv)
    pauses = [float(p) for p in args.pauses.split(",")]
    clips = first_clips(args.data, args.languages.split(",") if args.languages else None)
    for choice in args.clip:
        lang, _, file = choice.partition("=")
        clips[lang] = args.data / file
    engine = get_engine()
    audio = {lang: speech_only(path) for lang, path in clips.items()}
    results = []
    for pause in pauses:
        for first, second in itertools.permutations(clips, 2):
            result = switch(engine, first, audio[first], second, audio[second], pause)
            print(json.dumps(result, ensure_ascii=False), file=sys.stderr, flush=True)
            results.append(result)
    summary = {}
    for pause in pauses:
        done = [r for r in results if r["pause_s"] == pause]
        summary[str(pause)] = {
            "switches": len(done),
            "clean_switches": sum(
                r["wrong_before"] + r["wrong_after"] == 0 and r["both_found"] for r in done
            ),
            "words": sum(r["words_before"] + r["words_after"] for r in done),
            "words_in_wrong_language": sum(r["wrong_before"] + r["wrong_after"] for r in done),
            "both_languages_found": sum(r["both_found"] for r in done),
            "audio_s": round(sum(r["duration_s"] for r in done), 1),
            "processing_s": round(sum(r["processing_s"] for r in done), 1),
            "failures": [
                f"{r['from']}->{r['to']}: {r['wrong_before']}+{r['wrong_after']} wrong, {r['languages']}"
                for r in done
                if r["wrong_before"] + r["wrong_after"] or not r["both_found"]
            ],
        }
    out = {
        "cpu": machine.cpu(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "model": engine.name,
        "compute_type": engine.compute_type,
        "clips": {lang: str(path.relative_to(args.data)) for lang, path in clips.items()},
        "summary": summary,
        "switches": results,
    }
    print(json.dumps(out, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
