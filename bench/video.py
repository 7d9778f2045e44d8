"""Video benchmark: transcode speed and end-to-end time until AI subtitles are attached.

    python bench/video.py [--data DIR] [--runs N] [--skip-e2e]

``--data`` is the test-data folder holding ``video/jfk_librivox.mp4``; by default ``shared/testdata``
beside the repository checkout.

Prints one JSON document:
- ``transcode``: the pipeline alone (probe + all renditions in one ffmpeg run + HLS packaging +
  screenshot) on the test MP4, in process: seconds and ratio to the media duration.
- ``e2e``: a real ``vodscribe serve`` (SQLite, embedded worker) given the MP4's URL through the Gcore
  SDK: seconds from POST to ``ready`` (download, transcode, HLS) and to the AI subtitle being attached
  (plus the transcription task), each also as a ratio to the duration.
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
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import imageio_ffmpeg  # noqa: E402
from gcore import Gcore  # noqa: E402

from tests.conftest import start_service, stop_service  # noqa: E402
from vodscribe.media.hls import package_hls  # noqa: E402
from vodscribe.media.probe import probe  # noqa: E402
from vodscribe.media.transcode import screenshot, transcode  # noqa: E402

CLIP = "video/jfk_librivox.mp4"
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


def bench_e2e(testdata: Path, runs: int) -> dict[str, object]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(testdata)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{CLIP}"
    duration = probe(testdata / CLIP).duration
    with tempfile.TemporaryDirectory() as tmp:
        svc = start_service(Path(tmp), {"VODSCRIBE_RATE_LIMIT_PER_S": "0"})  # the bench polls fast
        try:
            sdk = Gcore(api_key=svc.api_key, base_url=svc.base_url, max_retries=0)
            _run(sdk, url, "warm-up")  # loads the model in the worker
            ready, attached = [], []
            for i in range(runs):
                to_ready, to_subtitle = _run(sdk, url, f"run {i}")
                ready.append(to_ready)
                attached.append(to_subtitle)
        finally:
            stop_service(svc)
            server.shutdown()
    return {
        "file": CLIP,
        "duration_s": round(duration, 3),
        "to_ready_s": [round(t, 3) for t in ready],
        "to_subtitle_s": [round(t, 3) for t in attached],
        "median_to_ready_s": round(statistics.median(ready), 3),
        "median_to_subtitle_s": round(statistics.median(attached), 3),
        "ready_ratio_to_duration": round(statistics.median(ready) / duration, 4),
        "subtitle_ratio_to_duration": round(statistics.median(attached) / duration, 4),
    }


def _run(sdk: Gcore, url: str, label: str) -> tuple[float, float]:
    start = time.perf_counter()
    video = sdk.streaming.videos.create(video={"name": label, "origin_url": url})
    to_ready = None
    while True:
        if to_ready is None:
            current = sdk.streaming.videos.get(video.id)
            if current.status == "ready":
                to_ready = time.perf_counter() - start
            elif current.error:
                raise RuntimeError(f"video failed: {current.error}")
        if to_ready is not None and sdk.streaming.videos.subtitles.list(video.id):
            return to_ready, time.perf_counter() - start
        if time.perf_counter() - start > 300:
            raise RuntimeError("timed out")
        time.sleep(0.05)


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
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-e2e", action="store_true")
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
        report["e2e"] = bench_e2e(testdata, args.runs)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
