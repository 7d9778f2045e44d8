"""What code-switching costs: the real-time factor of files that switch between 2, 4, 6 and 8
languages against that of a file in one language, the same loaded model, in one process.

    python bench/switch_cost.py [--data DIR] [--pause 1.0] [--counts 2,4,6,8] [--rounds 2]

Each chain is the first clip the manifest lists for each of the first N languages of the test data
(as ``bench/switch.py`` picks them, speech edges kept 0.1 s wide), one after another with
``--pause`` seconds between the speech edges. The baseline is ``en/long_en_concat.wav`` (84 s, one
language), and ``multi/multilingual_en_de.mp3`` (a real two-language recording) is measured beside
the chains. Every file goes through the service's pipeline (``transcribe_file``, language detected)
``--rounds`` times; the best round counts. The model's passes (encoder, language detections,
decodes) are counted under cProfile. The target: every file at most 2 times the baseline's
real-time factor. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import machine
import numpy as np
from short_clips import passes
from switch import KEEP, first_clips, speech_only, write_wav

from vodscribe.config import Settings
from vodscribe.engines.whisper import SAMPLE_RATE, WhisperEngine, engine_for
from vodscribe.media.probe import probe
from vodscribe.speech.transcription import transcribe_file

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "testdata"
BASELINE = "en/long_en_concat.wav"
TWO_LANGUAGES = "multi/multilingual_en_de.mp3"
TARGET = 2.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def chain(clips: list[np.ndarray], pause: float) -> np.ndarray:
    silence = np.zeros(round((pause - 2 * KEEP) * SAMPLE_RATE), dtype=np.float32)
    parts: list[np.ndarray] = []
    for i, clip in enumerate(clips):
        parts += [silence, clip] if i else [clip]
    return np.concatenate(parts)


def measured(engine: WhisperEngine, path: Path, rounds: int) -> dict[str, Any]:
    duration = probe(path).duration
    best, languages = float("inf"), tuple[str, ...]()
    for _ in range(rounds):
        started = time.perf_counter()
        transcript = transcribe_file(path, engine)
        best = min(best, time.perf_counter() - started)
        # Every language a segment was recognised in (the transcript's list stops at Gcore's 5).
        languages = tuple(dict.fromkeys(seg.language for seg in transcript.segments))
    counted = passes(lambda: transcribe_file(path, engine))
    return {
        "duration_s": round(duration, 2),
        "processing_s": round(best, 3),
        "rtf": round(best / duration, 4),
        "languages": list(languages),
        "passes": {label: found["calls"] for label, found in counted.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="DIR")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between the speech edges")
    parser.add_argument("--counts", default="2,4,6,8", help="languages in each chain, comma-separated")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    clips = first_clips(args.data, None)
    order = list(clips)
    counts = [int(n) for n in args.counts.split(",") if int(n) <= len(order)]
    engine = engine_for(Settings(data_dir=Path(tempfile.mkdtemp(prefix="vodscribe-switch-cost-"))))
    audio = {lang: speech_only(path) for lang, path in clips.items()}
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="vodscribe-switch-cost-") as tmp:
        transcribe_file(clips[order[0]], engine)  # warm: first calls allocate
        log(f"baseline {BASELINE} ...")
        results["one language (baseline)"] = measured(engine, args.data / BASELINE, args.rounds)
        log(f"{TWO_LANGUAGES} ...")
        results["two languages, recorded"] = measured(engine, args.data / TWO_LANGUAGES, args.rounds)
        for count in counts:
            langs = order[:count]
            path = Path(tmp) / f"chain-{count}.wav"
            write_wav(path, chain([audio[lang] for lang in langs], args.pause))
            log(f"{count} languages ({','.join(langs)}) ...")
            results[f"{count} languages"] = {"chain": langs, **measured(engine, path, args.rounds)}
    base = results["one language (baseline)"]["rtf"]
    for result in results.values():
        result["rtf_vs_one_language"] = round(result["rtf"] / base, 3)
        if "chain" in result:
            result["all_found"] = all(lang in result["languages"] for lang in result["chain"])
    print(
        json.dumps(
            {
                "cpu": machine.cpu(),
                "model": engine.name,
                "pause_s": args.pause,
                "target_rtf_vs_one_language": TARGET,
                "files": results,
            },
            ensure_ascii=False,
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
