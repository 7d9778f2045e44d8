"""Where a short clip's seconds go: vodscribe's recognition (``transcribe_file``) against raw
faster-whisper (``WhisperModel.transcribe``, beam 5, VAD on, language detected), the same loaded model,
the same clips, in one process, paired rounds.

    python bench/short_clips.py [--rounds 2]

Counts the model's passes under cProfile: encoder passes (Whisper pads every window to 30 s, so a
3 s clip costs a full one each time), language detections, decodes, alignments (word timestamps).
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vodscribe.config import Settings  # noqa: E402
from vodscribe.engines.whisper import engine_for  # noqa: E402
from vodscribe.speech.transcription import transcribe_file  # noqa: E402

CLIPS = ["ldc93s1.wav", "cheetah_test_de.wav", "sr_french.aiff", "cheetah_test_es.wav"]
#: The model's own calls, by the name cProfile gives them.
PASSES = {
    "encoder passes": "ctranslate2._ext.encode",
    "language detections": "ctranslate2._ext.detect_language",
    "alignments": "ctranslate2._ext.align",
    "decodes": "generate_with_fallback",
}


def passes(run: Callable[[], None]) -> dict[str, dict[str, float]]:
    profile = cProfile.Profile()
    profile.enable()
    run()
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    found: dict[str, dict[str, float]] = {}
    for label, name in PASSES.items():
        calls = [(nc, ct) for (_, _, func), (_, nc, _, ct, _) in stats.items() if name in func]
        found[label] = {"calls": sum(c for c, _ in calls), "seconds": round(sum(t for _, t in calls), 3)}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    clips = [ROOT / "tests" / "data" / name for name in CLIPS]
    engine = engine_for(Settings(data_dir=Path(tempfile.mkdtemp(prefix="vodscribe-short-"))))

    def pipeline() -> None:
        for clip in clips:
            transcribe_file(clip, engine)

    def raw() -> None:
        for clip in clips:
            segments, _ = engine.model.transcribe(str(clip), beam_size=5, vad_filter=True)
            list(segments)

    pipeline()  # warm: first calls allocate
    raw()
    wall: dict[str, list[float]] = {"pipeline": [], "raw": []}
    for _ in range(args.rounds):
        for name, run in (("pipeline", pipeline), ("raw", raw)):
            started = time.perf_counter()
            run()
            wall[name].append(round(time.perf_counter() - started, 3))
    best = {name: min(times) for name, times in wall.items()}
    print(
        json.dumps(
            {
                "clips": CLIPS,
                "wall_s": wall,
                "throughput_vs_raw": round(best["raw"] / best["pipeline"], 3),
                "passes": {"pipeline": passes(pipeline), "raw": passes(raw)},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
