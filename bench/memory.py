"""Memory benchmark: peak resident memory of a transcription against its duration and against plain
faster-whisper on the same file with the same model bytes.

    python bench/memory.py [--data DIR] [--hours 4] [--out-dir DIR] > memory.json

Builds two files from the test clips (``tests/long_media.py``):

* ``10min``: ``en/long_en_concat.wav`` seven times in a row (588 s of English speech, WAV);
* ``long``: the English LibriVox and JFK clips spread through ``--hours`` hours of faint pink noise,
  one every 30 minutes (FLAC), so the run takes minutes, not hours.

Then runs each of these in a fresh process and reads its peak RSS (``ru_maxrss`` from ``wait4``):

* ``vodscribe transcribe FILE`` on both files;
* plain faster-whisper (``WhisperModel(dir).transcribe(FILE, beam_size=5)``, its defaults otherwise,
  every segment consumed) on the 10-minute file, the baseline.

Both sides load the same model bytes: the bundled Whisper base written once to a folder, passed as
``VODSCRIBE_ASR_MODEL``. Prints one JSON document: peak MB and wall seconds of each run, the ratios
the targets are stated in (``long / 10min`` <= 1.1, ``ours 10min / raw 10min`` <= 1.0) and the
machine. One run each: memory peaks, unlike timings, barely vary between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.long_media import repeated, spread_speech  # noqa: E402
from vodscribe.engines import bundled_model  # noqa: E402
from vodscribe.media.probe import probe  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "testdata"
TEN_MINUTES = "en/long_en_concat.wav"
SPREAD = ("en/librivox_0870.wav", "en/jfk.flac", "en/librivox_0920.wav", "en/long_en_concat.wav")
GAP_SECONDS = 1800.0

RAW = """
import sys
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8")
segments, _ = model.transcribe(sys.argv[2], beam_size=5)
print(sum(len(s.text.split()) for s in segments), "words", file=sys.stderr)
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measured(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` to the end; its own peak RSS (``wait4``, so no other process counts), wall time and
    CPU time (user + system)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{cmd} exited with {code}")
    return {
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
    }


def write_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in bundled_model.load_files().items():
        (folder / name).write_bytes(data)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="test-data folder")
    parser.add_argument("--hours", type=float, default=4.0, help="length of the long file")
    parser.add_argument("--out-dir", type=Path, default=None, help="keep the built files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vodscribe-memory-") as tmp:
        work = args.out_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        model = write_model(work / "whisper-base")
        ten = work / "10min.wav"
        if not ten.is_file():
            log("building the 10-minute file ...")
            repeated(ten, args.data / TEN_MINUTES, 7)
        long = work / f"{args.hours:g}h.flac"
        if not long.is_file():
            log(f"building the {args.hours:g}-hour file ...")
            spread_speech(long, [args.data / c for c in SPREAD], args.hours * 3600, gap_seconds=GAP_SECONDS)
        vodscribe = str(Path(sys.executable).parent / "vodscribe")
        env = {
            "VODSCRIBE_ASR_MODEL": str(model),
            "VODSCRIBE_ASR_DEVICE": "cpu",
            "VODSCRIBE_DATA_DIR": str(work),
            "VODSCRIBE_MAX_MEDIA_DURATION_S": str(int(args.hours * 3600 * 1.5)),  # the default stops at 3 h
        }
        runs: dict[str, dict[str, Any]] = {}
        for name, path in (("10min", ten), ("long", long)):
            log(f"vodscribe transcribe {path.name} ...")
            runs[f"ours_{name}"] = {
                "duration_s": round(probe(path).duration, 1),
                **measured([vodscribe, "transcribe", str(path), "--quiet", "-o", str(work / "out.vtt")], env),
            }
        log("plain faster-whisper on the 10-minute file ...")
        runs["raw_10min"] = measured([sys.executable, "-c", RAW, str(model), str(ten)])
    ours_10, ours_long, raw_10 = runs["ours_10min"], runs["ours_long"], runs["raw_10min"]
    print(
        json.dumps(
            {
                "runs": runs,
                "ratios": {
                    "long_over_10min_peak": round(ours_long["peak_rss_mb"] / ours_10["peak_rss_mb"], 3),
                    "target_long_over_10min": 1.1,
                    "ours_over_raw_10min_peak": round(ours_10["peak_rss_mb"] / raw_10["peak_rss_mb"], 3),
                    "target_ours_over_raw": 1.0,
                    "ours_over_raw_10min_wall": round(ours_10["wall_s"] / raw_10["wall_s"], 3),
                },
                "config": {
                    "model": "whisper-base (bundled bytes), int8 on CPU, beam 5",
                    "long_hours": args.hours,
                    "cpu_count": os.cpu_count(),
                    "python": platform.python_version(),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
