"""ASR accuracy and speed benchmark over the project's test clips, plus one end-to-end API run.

Usage (from the repository root, in the project's virtual environment)::

    python bench/asr.py [--beam-size N] [--data DIR] [--skip-e2e] [--e2e-rounds N] [--clips PATTERN]

``--data`` is the test-data folder (the one with ``manifest.json``); by default ``shared/testdata``
beside the repository checkout.

Prints one JSON document on stdout; progress goes to stderr. See bench/README.md for the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import importlib
import json
import os
import platform
import re
import resource
import statistics
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import jiwer
import machine
import webvtt
from faster_whisper import BatchedInferencePipeline
from whisper_normalizer.basic import BasicTextNormalizer
from whisper_normalizer.english import EnglishTextNormalizer

from vodscribe.config import get_settings
from vodscribe.engines.whisper import (
    CUDA_BATCH_SIZE,
    WhisperEngine,
    engine_for,
    resolve_batch_size,
    resolve_device,
)
from vodscribe.media.probe import probe
from vodscribe.speech.cues import concatenated_text
from vodscribe.speech.transcription import transcribe_file

if TYPE_CHECKING:
    from gcore import Gcore
    from gcore.types.streaming import AITaskGetResponse
    from gcore.types.streaming.ai_task_get_response import AITaskGetResponseResultAIResultsTranscribe

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The project's test data: ``shared/testdata`` beside the repository checkout (``--data`` overrides it).
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "testdata"
MEDIA_SUFFIXES = {".wav", ".flac", ".mp3", ".aiff", ".aif", ".ogg", ".opus", ".m4a", ".mp4", ".mkv", ".webm"}
#: Languages written without spaces between words: scored by character error rate.
CER_LANGUAGES = {"zh", "ja", "th", "lo", "my", "km", "bo", "yue"}
#: A short clip transcribed once before timing (loads VAD and warms the model) and sent first in e2e.
WARMUP_CLIP = "en/jfk.flac"
E2E_CLIP = "en/long_en_concat.wav"
E2E_POLL_S = 0.1
E2E_TIMEOUT_S = 900.0
TEXT_PREVIEW = 200
#: "EN (0-30 s): " / "LEFT: " labels inside a reference: not spoken, removed before scoring.
REFERENCE_LABEL = re.compile(r"(?:^|(?<=\s))[A-Z]{2,5}(?: \([^)]*\))?:\s+")
LANGUAGE_LABEL = re.compile(r"(?:^|(?<=\s))([A-Z]{2}) \([^)]*\):")
VTT_POINTER = re.compile(r"^see (\S+\.vtt)$")

_english = EnglishTextNormalizer()
_basic = BasicTextNormalizer()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- clips and references -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Clip:
    file: str
    path: Path
    lang: str  # as in the manifest (ISO 639-1, or "multi")
    expected: tuple[str, ...]  # languages that must be detected
    reference: str  # labels removed

    @property
    def metric(self) -> str:
        return "cer" if all(lang in CER_LANGUAGES for lang in self.expected) else "wer"


def find_testdata(folder: Path) -> Path:
    if (folder / "manifest.json").is_file():
        return folder.resolve()
    raise SystemExit(f"no manifest.json in {folder}; pass the test-data folder with --data DIR")


def resolve_reference(entry: dict[str, Any], testdata: Path) -> str | None:
    """The reference text of a manifest entry, or None when it has no usable one."""
    text = str(entry.get("reference") or "").strip()
    if not text or text.startswith("(") or str(entry.get("reference_type", "")).startswith("partial"):
        return None
    pointer = VTT_POINTER.match(text)
    if pointer:
        vtt = testdata / pointer.group(1)
        if not vtt.is_file():
            return None
        return " ".join(caption.text.replace("\n", " ") for caption in webvtt.read(str(vtt)))
    return text


def expected_languages(entry: dict[str, Any], reference: str) -> tuple[str, ...]:
    """``lang`` for a single-language clip; for ``multi`` the languages labelled in the reference."""
    lang = str(entry["lang"])
    if lang != "multi":
        return (lang,)
    return tuple(dict.fromkeys(code.lower() for code in LANGUAGE_LABEL.findall(reference)))


def load_clips(testdata: Path, pattern: str | None) -> list[Clip]:
    manifest = json.loads((testdata / "manifest.json").read_text(encoding="utf-8"))
    clips = []
    for entry in manifest:
        path = testdata / entry["file"]
        if path.suffix.lower() not in MEDIA_SUFFIXES or not path.is_file():
            continue
        if pattern and not fnmatch.fnmatch(entry["file"], pattern) and pattern not in entry["file"]:
            continue
        reference = resolve_reference(entry, testdata)
        if reference is None:
            log(f"skip {entry['file']}: no usable reference")
            continue
        clips.append(
            Clip(
                file=entry["file"],
                path=path,
                lang=str(entry["lang"]),
                expected=expected_languages(entry, reference),
                reference=REFERENCE_LABEL.sub("", reference).strip(),
            )
        )
    return clips


# --- scoring --------------------------------------------------------------------------------------
def normalise(text: str, expected: tuple[str, ...]) -> str:
    """Whisper's normalisers; for CER languages also drop spaces and punctuation."""
    if expected == ("en",):
        return _english(text)
    basic = _basic(text)
    if all(lang in CER_LANGUAGES for lang in expected):
        return "".join(ch for ch in basic if not ch.isspace() and unicodedata.category(ch)[0] not in "PS")
    return basic


def error_rate(reference: str, hypothesis: str, metric: str) -> float | None:
    """WER or CER of already normalised texts; None when the reference normalises to nothing."""
    if not reference.strip():
        return None
    if metric == "cer":
        return float(jiwer.cer(reference, hypothesis))
    return float(jiwer.wer(reference, hypothesis))


def language_ok(clip: Clip, detected: tuple[str, ...]) -> bool:
    if clip.lang == "multi":
        return bool(clip.expected) and all(lang in detected for lang in clip.expected)
    return bool(detected) and detected[0] == clip.expected[0]


# --- in-process transcription ---------------------------------------------------------------------
def load_engine(
    beam_size: int, device: str | None = None, batch_size: int | None = None
) -> tuple[WhisperEngine, float]:
    s = get_settings()
    started = time.perf_counter()
    options = replace(
        s.asr,
        device=device or s.asr.device,
        beam_size=beam_size,
        batch_size=s.asr.batch_size if batch_size is None else batch_size,
    )
    engine = engine_for(s, options)
    return engine, time.perf_counter() - started


def warm_up(engine: WhisperEngine, testdata: Path) -> float | None:
    path = testdata / WARMUP_CLIP
    if not path.is_file():
        return None
    started = time.perf_counter()
    transcribe_file(path, engine)
    return time.perf_counter() - started


@dataclass(frozen=True, slots=True)
class ClipRun:
    clip: Clip
    hypothesis: str  # full text, as the API's concatenated_text
    report: dict[str, Any]  # the clip's entry in the JSON output


def run_clip(engine: WhisperEngine, clip: Clip) -> ClipRun:
    started = time.perf_counter()
    transcript = transcribe_file(clip.path, engine)
    elapsed = time.perf_counter() - started
    hypothesis = concatenated_text(transcript.cues)
    duration = transcript.media.duration
    reference = normalise(clip.reference, clip.expected)
    score = error_rate(reference, normalise(hypothesis, clip.expected), clip.metric)
    report = {
        "file": clip.file,
        "lang": clip.lang,
        "expected_languages": list(clip.expected),
        "detected_languages": list(transcript.languages),
        "language_confidence": [round(p, 3) for p in transcript.confidence],
        "language_ok": language_ok(clip, transcript.languages),
        "duration_s": round(duration, 3),
        "processing_s": round(elapsed, 3),
        "rtf": round(elapsed / duration, 4) if duration else None,
        clip.metric: None if score is None else round(score, 4),
        "hypothesis": hypothesis[:TEXT_PREVIEW],
        "reference": clip.reference[:TEXT_PREVIEW],
    }
    return ClipRun(clip, hypothesis, report)


def raw_transcribe(engine: WhisperEngine, path: Path, batch_size: int) -> tuple[str, float]:
    """Plain faster-whisper on ``path`` with the engine's model bytes and beam size, its defaults
    otherwise (sequential: no VAD, conditioned on previous text; batched: its own VAD); the text
    and the wall seconds, decoding included."""
    started = time.perf_counter()
    if batch_size > 0:
        pipeline = BatchedInferencePipeline(engine.model)
        segments, _ = pipeline.transcribe(str(path), beam_size=engine.beam_size, batch_size=batch_size)
    else:
        segments, _ = engine.model.transcribe(str(path), beam_size=engine.beam_size)
    text = " ".join(segment.text.strip() for segment in segments)
    return text, time.perf_counter() - started


def raw_clips(engine: WhisperEngine, clips: list[Clip], batch_size: int) -> list[ClipRun]:
    """The same clips through plain faster-whisper, scored the same way."""
    runs = []
    for clip in clips:
        hypothesis, elapsed = raw_transcribe(engine, clip.path, batch_size)
        reference = normalise(clip.reference, clip.expected)
        score = error_rate(reference, normalise(hypothesis, clip.expected), clip.metric)
        duration = probe(clip.path).duration
        report = {
            "file": clip.file,
            "lang": clip.lang,
            "duration_s": round(duration, 3),
            "processing_s": round(elapsed, 3),
            clip.metric: None if score is None else round(score, 4),
            "hypothesis": hypothesis[:TEXT_PREVIEW],
        }
        log(f"  raw {clip.file} {clip.metric}={report[clip.metric]}: {hypothesis}")
        runs.append(ClipRun(clip, hypothesis, report))
    return runs


def pooled_by_language(runs: list[ClipRun]) -> dict[str, float | None]:
    """Error rate per manifest language over all its clips at once (errors / reference words)."""
    pooled: dict[str, float | None] = {}
    for lang in dict.fromkeys(run.clip.lang for run in runs):
        group = [run for run in runs if run.clip.lang == lang]
        pairs = [
            (normalise(r.clip.reference, r.clip.expected), normalise(r.hypothesis, r.clip.expected))
            for r in group
        ]
        pairs = [(ref, hyp) for ref, hyp in pairs if ref.strip()]
        if not pairs:
            pooled[lang] = None
            continue
        measure = jiwer.cer if group[0].clip.metric == "cer" else jiwer.wer
        pooled[lang] = round(float(measure([p[0] for p in pairs], [p[1] for p in pairs])), 4)
    return pooled


def mode_summary(runs: list[ClipRun]) -> dict[str, Any]:
    audio = sum(run.report["duration_s"] for run in runs)
    processing = sum(run.report["processing_s"] for run in runs)
    return {
        "pooled_error_by_language": pooled_by_language(runs),
        "audio_s": round(audio, 2),
        "processing_s": round(processing, 2),
        "rtf": round(processing / audio, 4) if audio else None,
        "throughput_x_realtime": round(audio / processing, 2) if processing else None,
    }


def compare_to_raw(pipeline: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """Per language: the pipeline's pooled error is at most raw's (the target); throughput ratio."""
    ours, theirs = pipeline["pooled_error_by_language"], raw["pooled_error_by_language"]
    languages = {
        lang: {"pipeline": ours[lang], "raw": theirs[lang], "at_most_raw": ours[lang] <= theirs[lang] + 1e-9}
        for lang in ours
        if ours.get(lang) is not None and theirs.get(lang) is not None
    }
    return {
        "languages": languages,
        "all_at_most_raw": all(entry["at_most_raw"] for entry in languages.values()),
        "throughput_ratio": round(pipeline["throughput_x_realtime"] / raw["throughput_x_realtime"], 3)
        if pipeline["throughput_x_realtime"] and raw["throughput_x_realtime"]
        else None,
    }


def run_clips(engine: WhisperEngine, clips: list[Clip]) -> list[ClipRun]:
    runs = []
    for clip in clips:
        log(f"transcribing {clip.file} ...")
        run = run_clip(engine, clip)
        r = run.report
        log(f"  {r['detected_languages']} rtf={r['rtf']} {clip.metric}={r[clip.metric]}: {run.hypothesis}")
        runs.append(run)
    return runs


# --- summary --------------------------------------------------------------------------------------
def language_summary(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for lang in dict.fromkeys(r["lang"] for r in results):
        group = [r for r in results if r["lang"] == lang]
        metric = "cer" if "cer" in group[0] else "wer"
        scores = [r[metric] for r in group if r.get(metric) is not None]
        audio = sum(r["duration_s"] for r in group)
        processing = sum(r["processing_s"] for r in group)
        summary[lang] = {
            f"mean_{metric}": round(sum(scores) / len(scores), 4) if scores else None,
            "clips": len(group),
            "audio_s": round(audio, 2),
            "processing_s": round(processing, 2),
            "rtf": round(processing / audio, 4) if audio else None,
        }
    return summary


def summarise(runs: list[ClipRun]) -> dict[str, Any]:
    results = [run.report for run in runs]
    single = [r for r in results if r["lang"] != "multi"]
    return {
        "languages": language_summary(results),
        "english_wer": pooled_by_language(runs).get("en"),
        "all_single_language_clips_correct": all(r["language_ok"] for r in single),
        "language_failures": [r["file"] for r in results if not r["language_ok"]],
        "total_audio_s": round(sum(r["duration_s"] for r in results), 2),
        "total_processing_s": round(sum(r["processing_s"] for r in results), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


# --- end to end through the API -------------------------------------------------------------------
class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def media_server(root: Path) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def service_helpers() -> ModuleType:
    """``tests/conftest.py`` (start_service / stop_service), importable from the repository root."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    return importlib.import_module("tests.conftest")


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in children.read_text().split())
    return pids


def peak_rss_mb(pid: int) -> float | None:
    """The largest peak resident set (VmHWM) in the process tree under ``pid``, in MiB."""
    peaks = []
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return round(max(peaks), 1) if peaks else None


def wait_gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    """Wait until the processes have exited (the worker outlives ``serve`` for a moment)."""
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in alive if Path(f"/proc/{pid}").exists()]
    return alive


def submit_and_wait(client: Gcore, url: str) -> tuple[AITaskGetResponse, float]:
    """POST a transcription task and poll it until it ends; returns the task and the wall seconds."""
    started = time.perf_counter()
    task_id = client.streaming.ai_tasks.create(task_name="transcription", url=url).task_id
    deadline = time.monotonic() + E2E_TIMEOUT_S
    while time.monotonic() < deadline:
        task = client.streaming.ai_tasks.get(task_id)
        if task.status in ("SUCCESS", "FAILURE", "REVOKED"):
            wall = time.perf_counter() - started
            if task.status != "SUCCESS":
                raise RuntimeError(f"task for {url} ended {task.status}: {task.result}")
            return task, wall
        time.sleep(E2E_POLL_S)
    raise TimeoutError(f"task for {url} did not finish in {E2E_TIMEOUT_S} s")


def transcription_of(task: AITaskGetResponse) -> AITaskGetResponseResultAIResultsTranscribe:
    from gcore.types.streaming.ai_task_get_response import AITaskGetResponseResultAIResultsTranscribe

    if not isinstance(task.result, AITaskGetResponseResultAIResultsTranscribe):
        raise RuntimeError(f"task {task.task_id} has no transcription result: {task.result!r}")
    return task.result


def e2e_reference(testdata: Path) -> str:
    txt = (testdata / E2E_CLIP).with_suffix(".txt")
    if txt.is_file():
        return txt.read_text(encoding="utf-8")
    manifest = json.loads((testdata / "manifest.json").read_text(encoding="utf-8"))
    return next(str(e["reference"]) for e in manifest if e["file"] == E2E_CLIP)


def run_e2e(
    testdata: Path, beam_size: int, engine: WhisperEngine, batch_size: int, rounds: int = 3
) -> dict[str, Any]:
    """The 84 s file end to end through ``vodscribe serve`` against raw faster-whisper, ``rounds``
    paired rounds; ``wall_s`` and ``raw_wall_s`` are the medians."""
    from gcore import Gcore

    helpers = service_helpers()
    duration = probe(testdata / E2E_CLIP).duration
    env = {
        "VODSCRIBE_ASR_BEAM_SIZE": str(beam_size),
        "VODSCRIBE_ASR_BATCH_SIZE": str(batch_size),
        "VODSCRIBE_RATE_LIMIT_PER_S": "0",  # polls fast
    }
    # Paired rounds, the service's run then raw faster-whisper's in this process: one run of each
    # swings by 20 % on this machine. Each round starts a service of its own, since a second task
    # on the same bytes would reuse the first one's recognition.
    walls: list[float] = []
    raw_walls: list[float] = []
    warmups: list[float] = []
    peaks: list[float] = []
    for n in range(rounds):
        with tempfile.TemporaryDirectory(prefix="vodscribe-bench-") as tmp, media_server(testdata) as base:
            log(f"starting vodscribe serve (round {n + 1} of {rounds}) ...")
            service = helpers.start_service(Path(tmp), env)
            try:
                client = Gcore(api_key=service.api_key, base_url=service.base_url, max_retries=0)
                log(f"e2e warm-up with {WARMUP_CLIP} ...")
                warmups.append(submit_and_wait(client, f"{base}/{WARMUP_CLIP}")[1])
                log(f"e2e {E2E_CLIP} ...")
                task, wall = submit_and_wait(client, f"{base}/{E2E_CLIP}")
                walls.append(wall)
                peaks.append(peak_rss_mb(service.proc.pid) or 0.0)
            finally:
                members = process_tree(service.proc.pid)
                helpers.stop_service(service)
                left = wait_gone(members)
                if left:
                    log(f"warning: service processes still running: {left}")
        log(f"plain faster-whisper on {E2E_CLIP}, the baseline ...")
        raw_walls.append(raw_transcribe(engine, testdata / E2E_CLIP, batch_size)[1])
    wall, raw_wall = statistics.median(walls), statistics.median(raw_walls)
    total = task.processing_time.total_time_sec if task.processing_time else None
    result = transcription_of(task)
    text = result.concatenated_text or ""
    wer = error_rate(normalise(e2e_reference(testdata), ("en",)), normalise(text, ("en",)), "wer")
    return {
        "file": E2E_CLIP,
        "duration_s": round(duration, 3),
        "warmup_wall_s": round(statistics.median(warmups), 3),
        "wall_s": round(wall, 3),
        "total_time_sec": total,
        "e2e_rtf": round(wall / duration, 4),
        "raw_wall_s": round(raw_wall, 3),
        "e2e_over_raw_wall": round(wall / raw_wall, 3),
        "rounds": [
            {"wall_s": round(w, 3), "raw_wall_s": round(r, 3), "e2e_over_raw_wall": round(w / r, 3)}
            for w, r in zip(walls, raw_walls, strict=True)
        ],
        "target_e2e_over_raw_wall": 1.0,
        "processing_rtf": round(total / duration, 4) if total is not None else None,
        "target_e2e_rtf": 0.15,
        "languages": list(result.languages or []),
        "wer": None if wer is None else round(wer, 4),
        "hypothesis": text[:TEXT_PREVIEW],
        "service_peak_rss_mb": max(peaks) if peaks else None,
    }


# --- main -----------------------------------------------------------------------------------------
def config(engine: WhisperEngine, beam_size: int, load_average: float) -> dict[str, Any]:
    s = get_settings()
    return {
        "model": engine.name,
        "device": engine.device,
        "compute_type": engine.compute_type,
        "beam_size": beam_size,
        "cpu_threads": s.asr.cpu_threads,
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1m_at_start": round(load_average, 2),
        "cpu": machine.cpu(),
        "python": platform.python_version(),
        "faster_whisper": version("faster-whisper"),
        "ctranslate2": version("ctranslate2"),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--beam-size", type=int, default=get_settings().asr.beam_size)
    parser.add_argument(
        "--data",
        "--testdata",
        dest="data",
        type=Path,
        default=DEFAULT_DATA,
        metavar="DIR",
        help="test-data folder with manifest.json (default: shared/testdata beside the repository)",
    )
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default=None, help="default: the setting"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="clips per batch for the batched runs (default 8); on CUDA both sequential and batched run",
    )
    parser.add_argument("--skip-e2e", action="store_true", help="do not start `vodscribe serve`")
    parser.add_argument("--e2e-rounds", type=int, default=3, help="paired end-to-end rounds (medians)")
    parser.add_argument("--clips", help="only manifest files matching this glob (or containing it)")
    return parser.parse_args(argv)


def modes(device: str, batch_size: int | None) -> dict[str, int]:
    """The decoding modes to run: sequential, plus batched on CUDA or when a batch size is given."""
    chosen = {"sequential": 0}
    if device == "cuda" or (batch_size or 0) > 0:
        chosen["batched"] = batch_size if batch_size and batch_size > 0 else CUDA_BATCH_SIZE
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_average = os.getloadavg()[0]  # other processes on the machine skew the timings
    testdata = find_testdata(args.data)
    clips = load_clips(testdata, args.clips)
    device = resolve_device(args.device or get_settings().asr.device)
    service_batch = resolve_batch_size(get_settings().asr.batch_size, device)
    log(f"{len(clips)} clips from {testdata}, beam size {args.beam_size}, {device}")
    per_mode: dict[str, list[ClipRun]] = {}
    raw_per_mode: dict[str, list[ClipRun]] = {}
    load_s = warmup_s = None
    engine = None
    for name, batch_size in modes(device, args.batch_size).items():
        mode_engine, seconds = load_engine(args.beam_size, device, batch_size)
        if engine is None:
            engine, load_s = mode_engine, seconds
            warmup_s = warm_up(engine, testdata)
        log(f"pipeline, {name} (batch size {batch_size}) ...")
        per_mode[name] = run_clips(mode_engine, clips)
        log(f"plain faster-whisper, {name} ...")
        raw_per_mode[name] = raw_clips(mode_engine, clips, batch_size)
    assert engine is not None
    main_mode = "batched" if service_batch > 0 and "batched" in per_mode else "sequential"
    runs = per_mode[main_mode]
    summary = summarise(runs)
    mode_figures = {name: mode_summary(r) for name, r in per_mode.items()}
    raw_figures = {name: mode_summary(r) for name, r in raw_per_mode.items()}
    report: dict[str, Any] = {
        "config": config(engine, args.beam_size, load_average),
        "model_load_s": round(load_s or 0.0, 3),
        "warmup_s": None if warmup_s is None else round(warmup_s, 3),
        "clips": [run.report for run in runs],
        "raw_clips": [run.report for run in raw_per_mode[main_mode]],
        "summary": summary,
        "modes": mode_figures,
        "raw": raw_figures,
        "versus_raw": {name: compare_to_raw(mode_figures[name], raw_figures[name]) for name in mode_figures},
    }
    if "batched" in mode_figures:
        batched, raw_batched = mode_figures["batched"], raw_figures["batched"]
        report["batched_over_raw_batched_throughput"] = report["versus_raw"]["batched"]["throughput_ratio"]
        report["target_batched_over_raw_batched"] = 0.9
        report["batched_speedup_over_sequential"] = round(
            batched["throughput_x_realtime"] / mode_figures["sequential"]["throughput_x_realtime"], 3
        )
        report["raw_batched_speedup_over_raw_sequential"] = round(
            raw_batched["throughput_x_realtime"] / raw_figures["sequential"]["throughput_x_realtime"], 3
        )
    status = 0
    if not args.skip_e2e:
        try:
            report["e2e"] = run_e2e(testdata, args.beam_size, engine, service_batch, args.e2e_rounds)
        except Exception as exc:  # keep the clip figures; say why the API run failed
            log(f"e2e failed: {exc!r}")
            report["e2e"] = {"error": repr(exc)}
            status = 1
    json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
