"""Video benchmark: transcode speed and end-to-end time until AI subtitles are attached.

    python bench/video.py [--data DIR] [--runs N] [--skip-e2e] [--long] [--topology both|embedded|split]

``--data`` is the test-data folder holding ``video/jfk_librivox.mp4`` (and, for ``--long``,
``en/long_en_concat.wav``); by default ``shared/testdata`` beside the repository checkout.

Prints one JSON document:
- ``transcode``: the pipeline alone (probe + all renditions in one ffmpeg run + HLS packaging +
  screenshot) on the test MP4, in process: seconds and ratio to the media duration.
- ``e2e``: a real service given the MP4's URL through the Gcore SDK, in two topologies:
  ``embedded`` (``vodscribe serve``: SQLite, one embedded worker for both queues) and ``split``
  (PostgreSQL + Redis, ``serve --no-worker``, one ``worker -Q media`` and one ``worker -Q asr``
  process; skipped when PostgreSQL or Redis does not answer on 127.0.0.1). For each run: seconds
  from POST to ``ready`` and to the AI subtitle being attached; ``transcode_s`` (the video job from
  ``pending``, i.e. after download and probe, to ``ready``, as polled); ``recognition_s`` (the AI
  task's ``processing_time.total_time_sec``); and ``attached_over_longest`` = to_subtitle_s /
  max(transcode_s, recognition_s): about 1 when recognition runs beside transcoding.
  ``--long`` runs them on a generated ~10-minute 854x480 video whose audio is
  ``en/long_en_concat.wav`` seven times (default: the 24 s test MP4).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import imageio_ffmpeg  # noqa: E402
from gcore import Gcore  # noqa: E402

from tests.conftest import (  # noqa: E402
    Service,
    postgres_database,
    reachable,
    start_service,
    start_worker,
    stop_service,
)
from tests.processes import stop_group  # noqa: E402
from vodscribe.media.hls import package_hls  # noqa: E402
from vodscribe.media.probe import probe  # noqa: E402
from vodscribe.media.transcode import screenshot, transcode  # noqa: E402

CLIP = "video/jfk_librivox.mp4"
LONG_SPEECH = "en/long_en_concat.wav"  # 84 s of English read speech
REDIS = "redis://127.0.0.1:6379/12"
#: The project's test data: ``shared/testdata`` beside the repository checkout (``--data`` overrides it).
DEFAULT_TESTDATA = ROOT.parent / "shared" / "testdata"


def _testdata(folder: Path) -> Path:
    if (folder / CLIP).is_file():
        return folder
    raise SystemExit(f"{CLIP} not found in {folder}; pass the test-data folder with --data DIR")


def synthetic_720p(folder: Path, seconds: int = 30) -> Path:
    """A 1280x720 30 fps clip with moving detail and a tone: exercises the whole 240/360/480p ladder."""
    out = folder / "synthetic-720p.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:v", "libx264", "-preset", "fast", "-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "aac", str(out)],
        check=True,
    )  # fmt: skip
    return out


def long_480p(testdata: Path, folder: Path, plays: int = 7) -> Path:
    """An 854x480 25 fps MP4 whose audio is ``en/long_en_concat.wav`` ``plays`` times (~10 minutes)."""
    out = folder / "long-480p.mp4"
    seconds = 84.1 * plays
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=854x480:rate=25:duration={seconds:.1f}",
         "-stream_loop", str(plays - 1), "-i", str(testdata / LONG_SPEECH),
         "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-shortest", str(out)],
        check=True,
    )  # fmt: skip
    return out


def bench_transcode(source: Path, runs: int, label: str = CLIP) -> dict[str, object]:
    info = probe(source)
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            start = time.perf_counter()
            renditions = transcode(source, info, out)
            for r in renditions:
                package_hls(r, out)
            screenshot(renditions[-1].path, info.duration, out / "screenshot.jpg")
            times.append(time.perf_counter() - start)
    best = min(times)
    return {
        "file": label,
        "duration_s": round(info.duration, 3),
        "source": f"{info.width}x{info.height}",
        "renditions": [f"{r.name} {r.width}x{r.height} {r.bitrate // 1000} kbit/s" for r in renditions],
        "seconds": [round(t, 3) for t in times],
        "best_s": round(best, 3),
        "ratio_to_duration": round(best / info.duration, 4),
    }


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Run:
    """One video, POST to subtitle attached (seconds)."""

    to_ready_s: float
    to_subtitle_s: float
    transcode_s: float
    recognition_s: float

    @property
    def attached_over_longest(self) -> float:
        return self.to_subtitle_s / max(self.transcode_s, self.recognition_s)


def bench_e2e(source: Path, warm_up: Path, runs: int, topology: str) -> dict[str, object]:
    """``runs`` videos from ``source`` (served from 127.0.0.1) on a fresh service of ``topology``,
    after one ``warm_up`` video (loads the model in the worker). Each video is its own copy of the
    file: the service recognises a file's bytes once, and a second run would reuse the first's."""
    with tempfile.TemporaryDirectory() as tmp:
        served = Path(tmp)
        names = [_copy_of(warm_up, served, "warm-up")]
        names += [_copy_of(source, served, f"run-{i}") for i in range(runs)]
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(served)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            with _service(topology) as svc:
                sdk = Gcore(api_key=svc.api_key, base_url=svc.base_url, max_retries=0)
                measured = [_run(sdk, f"{base}/{name}", name) for name in names][1:]
        finally:
            server.shutdown()
    ratios = [r.attached_over_longest for r in measured]
    return {
        "file": source.name,
        "duration_s": round(probe(source).duration, 3),
        "runs": [
            {**{k: round(v, 3) for k, v in asdict(r).items()}, "attached_over_longest": round(a, 3)}
            for r, a in zip(measured, ratios, strict=True)
        ],
        "median_to_ready_s": round(statistics.median(r.to_ready_s for r in measured), 3),
        "median_to_subtitle_s": round(statistics.median(r.to_subtitle_s for r in measured), 3),
        "median_attached_over_longest": round(statistics.median(ratios), 3),
    }


def _copy_of(source: Path, folder: Path, label: str) -> str:
    """A copy of ``source`` in ``folder`` that differs by a metadata tag only; returns its name."""
    name = f"{label}{source.suffix}"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-map", "0", "-c", "copy",
         "-metadata", f"comment=vodscribe bench {label}", str(folder / name)],
        check=True,
    )  # fmt: skip
    return name


@contextmanager
def _service(topology: str) -> Iterator[Service]:
    """A running service: ``embedded`` (SQLite, its own worker) or ``split`` (PostgreSQL + Redis, one
    media and one ASR worker process)."""
    quick = {"VODSCRIBE_RATE_LIMIT_PER_S": "0"}  # the benchmark polls fast
    with tempfile.TemporaryDirectory() as tmp:
        if topology == "embedded":
            svc = start_service(Path(tmp), quick)
            try:
                yield svc
            finally:
                stop_service(svc)
            return
        with _postgres_redis() as env:
            svc = start_service(Path(tmp), {**quick, **env}, args=("serve", "--no-worker"))
            workers = [start_worker(svc, "-Q", queue, "--concurrency", "1") for queue in ("media", "asr")]
            try:
                yield svc
            finally:
                for worker in workers:
                    stop_group(worker)
                stop_service(svc)


@contextmanager
def _postgres_redis() -> Iterator[dict[str, str]]:
    """The service settings of a fresh PostgreSQL database (dropped afterwards) and an empty Redis db."""
    import redis

    with postgres_database() as url:
        redis.Redis.from_url(REDIS).flushdb()
        yield {"VODSCRIBE_DATABASE_URL": url, "VODSCRIBE_BROKER_URL": REDIS}


def _run(sdk: Gcore, url: str, label: str, poll_s: float = 0.1, limit_s: float = 1800) -> Run:
    start = time.perf_counter()
    video = sdk.streaming.videos.create(video={"name": label, "origin_url": url})
    pending = ready = attached = None
    while ready is None or attached is None:
        now = time.perf_counter() - start
        if ready is None:
            current = sdk.streaming.videos.get(video.id)
            if current.error:
                raise RuntimeError(f"video failed: {current.error}")
            if pending is None and current.status != "empty":  # downloaded and probed
                pending = now
            if current.status == "ready":
                ready = now
        if attached is None and sdk.streaming.videos.subtitles.list(video.id):
            attached = now
        if now > limit_s:
            raise RuntimeError(f"{label}: not ready with a subtitle after {limit_s:g} s")
        time.sleep(poll_s)
    assert pending is not None
    return Run(ready, attached, ready - pending, _recognition_s(sdk, video.id))


def _recognition_s(sdk: Gcore, video_id: int) -> float:
    """``total_time_sec`` of the video's transcription task (started to completed, as it reports)."""
    for task in sdk.streaming.ai_tasks.list(limit=100):
        entity = json.loads(task.task_data.client_entity_data or "{}")
        if entity.get("video_id") == video_id and not getattr(task.task_data, "subtitles_language", None):
            total = task.processing_time.total_time_sec if task.processing_time else None
            if total is not None:
                return float(total)
    raise RuntimeError(f"no finished transcription task for video {video_id}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        "--testdata",
        dest="data",
        type=Path,
        default=DEFAULT_TESTDATA,
        metavar="DIR",
        help=f"test-data folder with {CLIP} (default: shared/testdata beside the repository)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (after a warm-up)")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--long", action="store_true", help="e2e on a generated ~10-minute 480p video")
    parser.add_argument("--topology", choices=["both", "embedded", "split"], default="both")
    args = parser.parse_args()
    testdata = _testdata(args.data)
    report: dict[str, object] = {
        "config": {"cpu_count": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
        "transcode": bench_transcode(testdata / CLIP, args.runs),
    }
    with tempfile.TemporaryDirectory() as tmp:
        clip = synthetic_720p(Path(tmp))
        report["transcode_720p_ladder"] = bench_transcode(clip, args.runs, "generated 1280x720 30 fps, 30 s")
        if not args.skip_e2e:
            source = long_480p(testdata, Path(tmp)) if args.long else testdata / CLIP
            report["e2e"] = bench_topologies(source, testdata / CLIP, args.runs, args.topology)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report, indent=2))


def bench_topologies(source: Path, warm_up: Path, runs: int, which: str) -> dict[str, object]:
    results: dict[str, object] = {}
    for topology in ("embedded", "split"):
        if which not in ("both", topology):
            continue
        if topology == "split" and not (reachable(5432) and reachable(6379)):
            results[topology] = {"skipped": "PostgreSQL or Redis does not answer on 127.0.0.1"}
            continue
        results[topology] = bench_e2e(source, warm_up, runs, topology)
    return results


if __name__ == "__main__":
    main()
