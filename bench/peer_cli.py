"""The CLI against its peer: ``vodscribe transcribe`` against whisper-ctranslate2 (the engine
PeerTube's transcription runner uses), same file, same model bytes, paired runs.

    python bench/peer_cli.py [--data DIR] [--file en/long_en_concat.wav] [--runs 3]
        [--peer-venv DIR] > peer_cli.json

The peer runs from its own virtualenv (``--peer-venv``, default
``~/.cache/vodscribe-bench/whisper-ctranslate2-0.5.8``), made with ``pip install
whisper-ctranslate2==0.5.8`` on first use, so neither side's packages shape the other's. Both load
the bundled Whisper base from one folder (joined by ``vodscribe.engines.bundled_model.on_disk``);
ours is given it as ``VODSCRIBE_ASR_MODEL``, the peer as ``--model_directory``. The peer runs with
its defaults otherwise (beam 5, no VAD, no word timestamps), int8 on the CPU, writing WebVTT.

Runs alternate, peer first, ``--runs`` times each, each in a fresh process measured by ``wait4``:
wall seconds, CPU seconds (user + system) and peak RSS. Prints one JSON document: the medians, the
ratios the targets are stated in (wall <= 1.0, peak <= 1.1), and each side's output quality: WER
against the reference (Whisper's English normaliser) and subtitle lines over 42 characters.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import machine
import webvtt
from asr import error_rate, normalise
from memory import measured

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vodscribe.engines import bundled_model  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "testdata"
PEER = "whisper-ctranslate2==0.5.8"
LINE_LIMIT = 42
CACHE = Path.home() / ".cache" / "vodscribe-bench"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peer_venv(folder: Path) -> Path:
    """The peer's command, installed into its own virtualenv on first use."""
    command = folder / "bin" / "whisper-ctranslate2"
    if not command.is_file():
        log(f"installing {PEER} into {folder} ...")
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(folder / "bin" / "pip"), "install", "-q", PEER], check=True)
    return command


def quality(vtt: Path, reference: str) -> dict[str, Any]:
    captions = webvtt.read(str(vtt))
    text = " ".join(c.text.replace("\n", " ") for c in captions)
    lines = [line for c in captions for line in c.text.splitlines()]
    wer = error_rate(normalise(reference, ("en",)), normalise(text, ("en",)), "wer")
    return {
        "wer": round(wer, 4) if wer is not None else None,
        "cues": len(captions),
        "lines_over_42": sum(len(line) > LINE_LIMIT for line in lines),
    }


def summary(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="test-data folder")
    parser.add_argument("--file", default="en/long_en_concat.wav", help="English file in --data")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peer-venv", type=Path, default=CACHE / "whisper-ctranslate2-0.5.8")
    args = parser.parse_args()
    source = args.data / args.file
    reference = source.with_suffix(".txt").read_text(encoding="utf-8")
    peer = peer_venv(args.peer_venv)
    with tempfile.TemporaryDirectory(prefix="vodscribe-peer-") as tmp:
        work = Path(tmp)
        model = bundled_model.on_disk(work / "models")
        if model is None:
            raise SystemExit(f"cannot write the model under {work}")
        ours_cmd = [str(Path(sys.executable).parent / "vodscribe"), "transcribe", str(source), "--quiet"]
        ours_env = {
            "VODSCRIBE_ASR_MODEL": str(model),
            "VODSCRIBE_ASR_DEVICE": "cpu",
            "VODSCRIBE_DATA_DIR": str(work / "data"),
        }
        peer_cmd = [
            str(peer),
            str(source),
            "--model_directory",
            str(model),
            "--device",
            "cpu",
            "--compute_type",
            "int8",
            "--output_format",
            "vtt",
            "--output_dir",
            str(work / "peer"),
        ]
        results: dict[str, list[dict[str, float]]] = {"peer": [], "ours": []}
        for i in range(args.runs):
            log(f"run {i + 1}/{args.runs}: whisper-ctranslate2, then vodscribe ...")
            results["peer"].append(measured(peer_cmd))
            results["ours"].append(measured([*ours_cmd, "-o", str(work / "ours.vtt")], ours_env))
        outputs = {"peer": quality(work / "peer" / f"{source.stem}.vtt", reference)}
        outputs["ours"] = quality(work / "ours.vtt", reference)
    peer_m, ours_m = summary(results["peer"]), summary(results["ours"])
    print(
        json.dumps(
            {
                "file": args.file,
                "runs": results,
                "median": {"peer": peer_m, "ours": ours_m},
                "ratios": {
                    "wall": round(ours_m["wall_s"] / peer_m["wall_s"], 3),
                    "target_wall": 1.0,
                    "cpu": round(ours_m["cpu_s"] / peer_m["cpu_s"], 3),
                    "peak": round(ours_m["peak_rss_mb"] / peer_m["peak_rss_mb"], 3),
                    "target_peak": 1.1,
                },
                "quality": outputs,
                "config": {
                    "peer": PEER,
                    "model": "whisper-base (bundled bytes), int8 on CPU, beam 5",
                    "machine": machine.cpu(),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
