"""Load benchmark: many clients, many tasks, two workers; nothing may be lost or done twice. With
``--api``: how fast the API answers reads over a stored catalogue.

    python bench/load.py [--tasks 200] [--clients 20] [--backend auto|embedded|postgres-redis] [--data DIR]
    python bench/load.py --api [--videos 1000] [--stored-tasks 10000] [--connections 20] [--seconds 10]
        [--backend embedded|postgres-redis] [--api-processes N]

Starts ``vodscribe serve --no-worker`` and two ``vodscribe worker`` processes (PostgreSQL + Redis when
they answer on 127.0.0.1, else SQLite + the filesystem queue), serves short real speech clips from
127.0.0.1, and lets ``--clients`` threads, each with its own API key, submit their share of
``--tasks`` transcriptions and poll each until it finishes. Prints one JSON document:
tasks lost (not finished when the run ends; must be 0), duplicates (tasks run more than once or ids
handed out twice; must be 0), wrong results, p50/p99/max latency of ``GET /streaming/ai/tasks/{id}``,
throughput in tasks/s and in audio seconds per wall second.

``--api`` stores ``--videos`` ready videos (three renditions and a subtitle each) and ``--stored-tasks``
finished AI tasks (each the result of an 84 s English recording, cues and WebVTT) for one client,
starts ``vodscribe serve --no-worker`` with its defaults (its API processes unless ``--api-processes``
says; the rate limiter still runs, at a limit no run reaches), and drives each read route with
``wrk`` (``--connections`` connections,
``--seconds`` each), ``/health/live`` first as the floor of the framework in the same run. Reports
requests/s, latency percentiles and each route's throughput as a share of that floor.

The clips come from the test-data folder ``--data`` (default ``shared/testdata`` beside the repository
checkout; a flat copy such as ``tests/data`` works too). Without ``--data``, when that folder is
absent, the copies in ``tests/data`` are used, so the benchmark runs from a clean clone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import reachable, start_service, start_worker, stop_service  # noqa: E402
from tests.processes import stop_group  # noqa: E402
from vodscribe.db.session import migrate, session_scope  # noqa: E402
from vodscribe.db.tables import AITask, Rendition, Subtitle, Video  # noqa: E402
from vodscribe.services.clients import create_client  # noqa: E402

#: Short real clips (their test-data manifest paths) and the language each must come out in.
CLIPS = {
    "en/ldc93s1.wav": "eng",
    "de/cheetah_test_de.wav": "ger",
    "fr/sr_french.aiff": "fre",
    "es/cheetah_test_es.wav": "spa",
}
DURATIONS = {
    "ldc93s1.wav": 2.92,
    "cheetah_test_de.wav": 3.46,
    "sr_french.aiff": 3.57,
    "cheetah_test_es.wav": 4.1,
}
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/11"
#: The project's test data: ``shared/testdata`` beside the repository checkout (``--data`` overrides it).
DEFAULT_TESTDATA = ROOT.parent / "shared" / "testdata"
#: The same clips copied into the repository (flat: file names only).
REPO_COPIES = ROOT / "tests" / "data"


def find_clip(folder: Path, clip: str) -> str:
    """``clip`` (a manifest path) inside ``folder``: that path, or its bare name in a flat copy."""
    path = next((p for p in (clip, Path(clip).name) if (folder / p).is_file()), None)
    if path is None:
        raise SystemExit(f"{clip} not found in {folder}; pass the test-data folder with --data DIR")
    return path


def _clips_in(folder: Path) -> dict[str, str]:
    """Each clip's path inside ``folder`` (its manifest path, or its bare name in a flat copy) -> its
    expected language."""
    return {find_clip(folder, clip): language for clip, language in CLIPS.items()}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _backend(choice: str) -> tuple[str, dict[str, str], str | None]:
    """(name, service env, database to drop afterwards)."""
    if choice == "embedded" or (choice == "auto" and not (reachable(5432) and reachable(6379))):
        return "sqlite+filesystem", {}, None
    name = f"vodscribe_load_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    url = sa.engine.make_url(PG).set(database=name).render_as_string(hide_password=False)
    return "postgresql+redis", {"VODSCRIBE_DATABASE_URL": url, "VODSCRIBE_BROKER_URL": REDIS}, name


def _drop(database: str | None) -> None:
    if database:
        admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


class Client:
    def __init__(
        self, base_url: str, key: str, clips_url: str, clips: dict[str, str], count: int, offset: int
    ) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"APIKey {key}"}, timeout=60)
        self.clips_url, self.clips, self.count, self.offset = clips_url, clips, count, offset
        self.latencies: list[float] = []
        self.tasks: dict[str, str] = {}  # id -> expected language
        self.final: dict[str, dict] = {}

    def run(self, deadline: float) -> None:
        names = list(self.clips)
        for i in range(self.count):
            name = names[(self.offset + i) % len(names)]
            r = self._request("POST", "/streaming/ai/tasks", json={"url": f"{self.clips_url}/{name}"})
            r.raise_for_status()
            self.tasks[r.json()["task_id"]] = self.clips[name]
        waiting = set(self.tasks)
        while waiting and time.monotonic() < deadline:
            for task_id in list(waiting):
                start = time.perf_counter()
                body = self._request("GET", f"/streaming/ai/tasks/{task_id}").json()
                self.latencies.append(time.perf_counter() - start)
                if body["status"] in ("SUCCESS", "FAILURE", "REVOKED"):
                    self.final[task_id] = body
                    waiting.discard(task_id)
            time.sleep(0.5)

    def _request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        while True:
            r = self.http.request(method, url, **kwargs)  # type: ignore[arg-type]
            if r.status_code != 429:
                return r
            time.sleep(float(r.headers.get("retry-after", "1")))


def _stamp(seconds: float) -> str:
    return f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{seconds % 60:06.3f}"


def _stored_result(folder: Path) -> dict:
    """An AI task's result as the worker stores it for an 84 s English recording: its reference
    transcript in cues of at most 42 characters, 2.8 s each, and their WebVTT."""
    manifest = (
        json.loads((folder / "manifest.json").read_text()) if (folder / "manifest.json").is_file() else []
    )
    text = next((e["reference"] for e in manifest if e["file"] == "en/long_en_concat.wav"), None)
    text = text or " ".join(["And so my fellow Americans ask not what your country can do for you."] * 15)
    cues: list[str] = []
    for word in text.split():
        if cues and len(cues[-1]) + 1 + len(word) <= 42:
            cues[-1] += " " + word
        else:
            cues.append(word)
    subtitles = [
        {"start_time": _stamp(2.8 * i), "end_time": _stamp(2.8 * i + 2.7), "text": cue}
        for i, cue in enumerate(cues)
    ]
    vtt = "WEBVTT\n\n" + "\n\n".join(f"{c['start_time']} --> {c['end_time']}\n{c['text']}" for c in subtitles)
    return {
        "subtitles": subtitles,
        "vttContent": vtt + "\n",
        "concatenated_text": " ".join(cues),
        "languages": ["eng"],
        "speech_detected": True,
        "language_confidence": {"eng": 0.99},
    }


def seed(db_url: str, videos: int, tasks: int, folder: Path) -> tuple[str, str, int]:
    """One client with ``videos`` ready videos and ``tasks`` finished AI tasks: (its key, a task id,
    a video id)."""
    result = _stored_result(folder)
    now = datetime.now(UTC)
    with session_scope(db_url) as s:
        client, key = create_client(s, "api-bench")
        client_id = client.id
    with session_scope(db_url) as s:
        s.execute(
            sa.insert(Video),
            [
                {
                    "client_id": client_id,
                    "slug": uuid.uuid4().hex[:16],
                    "name": f"Recording {i}",
                    "origin_url": f"https://media.example.com/{i}.mp4",
                    "status": "ready",
                    "duration_ms": 84_000,
                    "origin_size": 12_000_000,
                    "origin_width": 1280,
                    "origin_height": 720,
                    "origin_audio_channels": 2,
                    "has_audio": True,
                    "screenshot": "screenshot.jpg",
                    "job_state": "done",
                    "created_at": now - timedelta(seconds=i),
                    "updated_at": now - timedelta(seconds=i),
                }
                for i in range(videos)
            ],
        )
        ids = list(s.scalars(sa.select(Video.id).where(Video.client_id == client_id)))
        s.execute(
            sa.insert(Rendition),
            [
                {
                    "video_id": v,
                    "name": name,
                    "width": w,
                    "height": h,
                    "size": size,
                    "bitrate": rate,
                    "progress": 100,
                    "status": "complete",
                    "filename": f"{name}.mp4",
                }
                for v in ids
                for name, w, h, size, rate in (
                    ("vod240p", 426, 240, 2_000_000, 400_000),
                    ("vod360p", 640, 360, 4_000_000, 800_000),
                    ("vod480p", 854, 480, 8_000_000, 1_500_000),
                )
            ],
        )
        s.execute(
            sa.insert(Subtitle),
            [
                {
                    "video_id": v,
                    "name": "English (AI-generated)",
                    "language": "eng",
                    "vtt": result["vttContent"],
                }
                for v in ids
            ],
        )
        task_ids = [str(uuid.uuid4()) for _ in range(tasks)]
        s.execute(
            sa.insert(AITask),
            [
                {
                    "id": task_id,
                    "client_id": client_id,
                    "status": "SUCCESS",
                    "progress": 100,
                    "task_data": {"task_name": "transcription", "url": f"https://media.example.com/{i}.mp4"},
                    "result": result,
                    "attempts": 1,
                    "created_at": now - timedelta(seconds=tasks - i + 60),
                    "started_at": now - timedelta(seconds=tasks - i + 30),
                    "completed_at": now - timedelta(seconds=tasks - i),
                }
                for i, task_id in enumerate(task_ids)
            ],
        )
    return key, random.Random(1).choice(task_ids), ids[len(ids) // 2]


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def wrk(url: str, key: str, connections: int, seconds: int) -> dict:
    """``wrk`` against one URL: requests/s and latency percentiles in ms; fails on any non-2xx."""
    threads = min(2, connections)  # wrk wants a connection per thread at least
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    headers = ["-H", f"Authorization: APIKey {key}"]
    out = subprocess.run([*command, *headers, url], check=True, capture_output=True, text=True).stdout
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise SystemExit(f"{url}: {m.group(1)} answers were not 2xx:\n{out}")
    if m := re.search(r"Socket errors: (.*)", out):
        raise SystemExit(f"{url}: socket errors {m.group(1)}:\n{out}")
    latency = {
        f"p{pct}": round(float(value) * _UNITS[unit], 2)
        for pct, value, unit in re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    }
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"requests_per_s": round(rps, 1), "latency_ms": latency}


def api_benchmark(args: argparse.Namespace, folder: Path) -> dict:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (apt-get install wrk)")
    backend, env, database = _backend(args.backend)
    tmp = Path(tempfile.mkdtemp(prefix="vodscribe-api-"))
    env = {**env, "VODSCRIBE_RATE_LIMIT_PER_S": "1000000", "VODSCRIBE_RATE_LIMIT_BURST": "1000000"}
    if args.api_processes:
        env["VODSCRIBE_API_PROCESSES"] = str(args.api_processes)
    service = start_service(tmp, env, args=("serve", "--no-worker"))
    said = re.search(r"API: (\d+) processes", (tmp / "serve.log").read_text())
    processes = int(said.group(1)) if said else 1
    try:
        db_url = service.env.get("VODSCRIBE_DATABASE_URL") or f"sqlite:///{tmp / 'vodscribe.db'}"
        started = time.perf_counter()
        key, task_id, video_id = seed(db_url, args.videos, args.stored_tasks, folder)
        seeded = time.perf_counter() - started
        routes = {
            "health_live (floor)": "/health/live",
            "get_task": f"/streaming/ai/tasks/{task_id}",
            "list_tasks": "/streaming/ai/tasks",
            "get_video": f"/streaming/videos/{video_id}",
            "list_videos": "/streaming/videos",
        }
        for path in routes.values():  # warm: the first request of each route builds its caches
            httpx.get(service.base_url + path, headers=service.headers(key), timeout=30).raise_for_status()
        figures = {
            name: wrk(service.base_url + path, key, args.connections, args.seconds)
            for name, path in routes.items()
        }
    finally:
        stop_service(service)
        _drop(database)
        shutil.rmtree(tmp, ignore_errors=True)
    floor = figures["health_live (floor)"]["requests_per_s"]
    for figure in figures.values():
        figure["share_of_floor"] = round(figure["requests_per_s"] / floor, 3)
    return {
        "config": {
            "backend": backend,
            "videos": args.videos,
            "stored_tasks": args.stored_tasks,
            "connections": args.connections,
            "seconds": args.seconds,
            "api_processes": processes,
            "cpu_count": os.cpu_count(),
            "seed_s": round(seeded, 1),
        },
        "routes": figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", action="store_true", help="the API's read latency over a stored catalogue")
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--stored-tasks", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--api-processes", type=int, default=None, help="default: serve's own default")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=["auto", "embedded", "postgres-redis"], default="auto")
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help="test-data folder with the clips (default: shared/testdata beside the repository, "
        "else the copies in tests/data)",
    )
    args = parser.parse_args()

    folder = args.data or (DEFAULT_TESTDATA if DEFAULT_TESTDATA.is_dir() else REPO_COPIES)
    if args.api:
        print(json.dumps(api_benchmark(args, folder), indent=2))
        return
    clips = _clips_in(folder)
    backend, env, database = _backend(args.backend)
    media = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    threading.Thread(target=media.serve_forever, daemon=True).start()
    clips_url = f"http://127.0.0.1:{media.server_address[1]}"
    tmp = Path(tempfile.mkdtemp(prefix="vodscribe-load-"))
    service = start_service(tmp, {**env, "VODSCRIBE_STALE_AFTER_S": "60"}, args=("serve", "--no-worker"))
    workers = [
        start_worker(service, "-Q", "asr,media", "--pool", "prefork", "-c", "1") for _ in range(args.workers)
    ]
    try:
        db_url = service.env.get("VODSCRIBE_DATABASE_URL") or f"sqlite:///{tmp / 'vodscribe.db'}"
        migrate(db_url)
        with session_scope(db_url) as s:
            keys = [create_client(s, f"load-{i}")[1] for i in range(args.clients)]
        share = [
            args.tasks // args.clients + (1 if i < args.tasks % args.clients else 0)
            for i in range(args.clients)
        ]
        clients = [
            Client(service.base_url, k, clips_url, clips, n, i)
            for i, (k, n) in enumerate(zip(keys, share, strict=True))
        ]
        start = time.perf_counter()
        deadline = time.monotonic() + args.timeout
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            for future in [pool.submit(c.run, deadline) for c in clients]:
                future.result()
        wall = time.perf_counter() - start
        report = _report(clients, db_url, wall, backend, args)
    finally:
        for worker in workers:
            stop_group(worker)
        stop_service(service)
        media.shutdown()
        _drop(database)
    print(json.dumps(report, indent=2))


def _report(clients: list[Client], db_url: str, wall: float, backend: str, args: argparse.Namespace) -> dict:
    submitted = [t for c in clients for t in c.tasks]
    final = {t: body for c in clients for t, body in c.final.items()}
    expected = {t: lang for c in clients for t, lang in c.tasks.items()}
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select id, status, attempts from ai_tasks"
                " where client_id in (select id from clients where name like 'load-%')"
            )
        ).all()
    engine.dispose()
    attempts = {r[0]: r[2] for r in rows}
    latencies = sorted(lat for c in clients for lat in c.latencies)
    succeeded = [t for t, b in final.items() if b["status"] == "SUCCESS"]
    wrong = [t for t in succeeded if final[t]["result"]["languages"][:1] != [expected[t]]]
    audio = sum(DURATIONS[Path(final[t]["task_data"]["url"]).name] for t in succeeded)

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1)

    return {
        "config": {
            "backend": backend,
            "tasks": args.tasks,
            "clients": args.clients,
            "workers": args.workers,
            "cpu_count": os.cpu_count(),
        },
        "submitted": len(submitted),
        "in_database": len(rows),
        "finished": len(final),
        "succeeded": len(succeeded),
        "failed": sorted({b["result"]["error"] for b in final.values() if b["status"] == "FAILURE"}),
        "tasks_lost": len(set(submitted) - set(final)),
        "duplicates": (len(submitted) - len(set(submitted)))
        + sum(1 for t in submitted if attempts.get(t, 1) > 1),
        "wrong_language": len(wrong),
        "get_task_latency_ms": {
            "p50": pct(0.50),
            "p99": pct(0.99),
            "max": round(1000 * latencies[-1], 1),
            "mean": round(1000 * statistics.mean(latencies), 1),
            "requests": len(latencies),
        },
        "wall_s": round(wall, 1),
        "throughput_tasks_per_s": round(len(final) / wall, 3),
        "throughput_audio_s_per_s": round(audio / wall, 2),
    }


if __name__ == "__main__":
    main()
