"""What a vocabulary does to recognition: recall of the listed terms on clips that say them, without
and with the vocabulary, and the error rate on the rest of the test data (every clip of the
manifest), where no term is said, without and with it. JSON on stdout.

    python bench/vocabulary.py [--data DIR] [--skip-rest]

The clips that say the terms: faster-whisper's own `en/hotwords.mp3` ("ComfyUI" twice), and
sentences synthesised with espeak-ng (`apt-get install espeak-ng`), each said between two clips of
real speech (LibriVox), so that the term comes in the middle of a real recording, at two speaking
rates. espeak-ng reads each term as people say it ("Comfy U I", "G core"), and the reference holds
it as written. A term
counts as recalled where the text has it exactly as written (case included).

Both runs use the same loaded model, in this process (bundled base, int8, beam 5 by default).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asr
import numpy as np
from faster_whisper.audio import decode_audio

from vodscribe.engines.whisper import WhisperEngine
from vodscribe.speech.cues import concatenated_text
from vodscribe.speech.transcription import transcribe_file
from vodscribe.speech.vocabulary import Vocabulary

#: (sentence as written, the same as espeak-ng is to say it).
SENTENCES = [
    ("Open the ComfyUI folder and load the workflow.", "Open the Comfy U I folder and load the workflow."),
    (
        "We deploy the service on Kubernetes in the Gcore cloud.",
        "We deploy the service on Kubernetes in the G core cloud.",
    ),
    (
        "The database runs on PostgreSQL with two replicas.",
        "The database runs on Postgres Q L with two replicas.",
    ),
    (
        "Upload the video to vodscribe and wait for the subtitles.",
        "Upload the video to vod scribe and wait for the subtitles.",
    ),
    (
        "Our dashboards live in Grafana next to the logs.",
        "Our dash boards live in Graffana, next to the logs.",
    ),
    (
        "Nginx sends the requests to the FastAPI workers.",
        "Engine X sends the requests to the Fast A P I workers.",
    ),
    ("Export the captions as WebVTT for the player.", "Export the captions as Web V T T for the player."),
    ("The Celery workers take their jobs from Redis.", "The Celery workers take their jobs from Redis."),
]
TERMS = [
    "ComfyUI",
    "Kubernetes",
    "Gcore",
    "PostgreSQL",
    "vodscribe",
    "Grafana",
    "Nginx",
    "FastAPI",
    "WebVTT",
    "Celery",
    "Redis",
]
#: Real speech around each synthesised sentence.
AROUND = ("en/librivox_0870.wav", "en/librivox_0880.wav")
RATE = 16000


#: espeak-ng's speaking rates (words a minute): each sentence is said at each, since which words
#: the model hears in synthetic speech changes with the rate.
RATES = (140, 160)


def synthesise(text: str, out: Path, rate: int) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(rate), "-w", str(out), text], check=True)
    return decode_audio(out)


def write_wav(path: Path, samples: np.ndarray) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path


def term_clips(testdata: Path, folder: Path) -> list[tuple[Path, str]]:
    """(clip, reference) for each clip that says terms."""
    pause = np.zeros(RATE // 2, dtype=np.float32)
    before, after = (decode_audio(testdata / name) for name in AROUND)
    clips = [(testdata / "en/hotwords.mp3", "ComfyUI ComfyUI")]  # the terms it says, for recall
    for rate in RATES:
        for n, (written, spoken) in enumerate(SENTENCES):
            said = synthesise(spoken, folder / f"tts{n}-{rate}.wav", rate)
            mixed = np.concatenate([before[: 4 * RATE], pause, said, pause, after[: 4 * RATE]])
            clips.append((write_wav(folder / f"term{n}-{rate}.wav", mixed), written))
    return clips


def heard(engine: WhisperEngine, path: Path, vocabulary: Vocabulary | None) -> tuple[str, float]:
    started = time.perf_counter()
    transcript = transcribe_file(path, engine, vocabulary=vocabulary)
    return concatenated_text(transcript.cues), time.perf_counter() - started


def recall(texts: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    said = found = 0
    per_term: dict[str, list[int]] = {}
    for text, reference in zip(texts, references, strict=True):
        for term in TERMS:
            expected = reference.count(term)
            if expected:
                hits = min(text.count(term), expected)
                said, found = said + expected, found + hits
                counts = per_term.setdefault(term, [0, 0])
                counts[0], counts[1] = counts[0] + hits, counts[1] + expected
    return {
        "said": said,
        "recalled": found,
        "recall": round(found / said, 3) if said else None,
        "per_term": {t: f"{h}/{e}" for t, (h, e) in per_term.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=asr.DEFAULT_DATA)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--skip-rest", action="store_true", help="only the clips that say the terms")
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed: apt-get install espeak-ng")
    testdata = asr.find_testdata(args.data)
    engine, _ = asr.load_engine(args.beam_size, "cpu", 0)
    vocabulary = Vocabulary.of(TERMS)
    report: dict[str, Any] = {"cpu": asr.machine.cpu(), "beam_size": args.beam_size, "terms": TERMS}
    with tempfile.TemporaryDirectory(prefix="vodscribe-vocab-") as tmp:
        clips = term_clips(testdata, Path(tmp))
        asr.transcribe_file(testdata / asr.WARMUP_CLIP, engine)
        runs: dict[str, list[str]] = {"without": [], "with": []}
        seconds: dict[str, float] = {"without": 0.0, "with": 0.0}
        for path, _ in clips:
            for mode, given in (("without", None), ("with", vocabulary)):
                text, took = heard(engine, path, given)
                runs[mode].append(text)
                seconds[mode] += took
            asr.log(f"{path.name}: {runs['with'][-1][:100]}")
        references = [reference for _, reference in clips]
        report["term_clips"] = {
            mode: {**recall(texts, references), "processing_s": round(seconds[mode], 2)}
            for mode, texts in runs.items()
        }
        report["term_clip_texts"] = [
            {"reference": r, "without": a, "with": b}
            for r, a, b in zip(references, runs["without"], runs["with"], strict=True)
        ]
    if not args.skip_rest:
        rest = asr.load_clips(testdata, None)
        scores: dict[str, list[float]] = {"without": [], "with": []}
        spent = {"without": 0.0, "with": 0.0}
        inserted: list[dict[str, str]] = []
        for clip in rest:
            for mode, given in (("without", None), ("with", vocabulary)):
                text, took = heard(engine, clip.path, given)
                spent[mode] += took
                score = asr.error_rate(
                    asr.normalise(clip.reference, clip.expected),
                    asr.normalise(text, clip.expected),
                    clip.metric,
                )
                scores[mode].append(score if score is not None else 0.0)
                if given is not None:
                    inserted += [
                        {"file": clip.file, "term": t}
                        for t in TERMS
                        if t.casefold() in text.casefold() and t.casefold() not in clip.reference.casefold()
                    ]
        report["rest"] = {
            "clips": len(rest),
            "mean_error_without": round(statistics.fmean(scores["without"]), 4),
            "mean_error_with": round(statistics.fmean(scores["with"]), 4),
            "clips_worse_with": sum(
                b > a + 1e-9 for a, b in zip(scores["without"], scores["with"], strict=True)
            ),
            "clips_better_with": sum(
                b < a - 1e-9 for a, b in zip(scores["without"], scores["with"], strict=True)
            ),
            "terms_inserted": inserted,
            "processing_s": {mode: round(value, 2) for mode, value in spent.items()},
            "processing_with_over_without": round(spent["with"] / spent["without"], 3),
        }
    json.dump(report, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
