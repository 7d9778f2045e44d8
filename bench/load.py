"""Load benchmark: many clients, many tasks, two workers; nothing may be lost or done twice.

    python bench/load.py [--tasks 200] [--clients 20] [--backend auto|embedded|postgres-redis] [--data DIR]

Starts ``vodscribe serve --no-worker`` and two ``vodscribe worker`` processes (PostgreSQL + Redis when
they answer on 127.0.0.1, else SQLite + the filesystem queue), serves short real speech clips from
127.0.0.1, and lets ``--clients`` threads, each with its own API key, submit their share of
``--tasks`` transcriptions and poll each until it finishes. Prints one JSON document:
tasks lost (not finished when the run ends; must be 0), duplicates (tasks run more than once or ids
handed out twice; must be 0), wrong results, p50/p99/max latency of ``GET /streaming/ai/tasks/{id}``,
throughput in tasks/s and in audio seconds per wall second.

The clips come from the test-data folder ``--data`` (default ``shared/testdata`` beside the repository
checkout; a flat copy such as ``tests/data`` works too). Without ``--data``, when that folder is
absent, the copies in ``tests/data`` are used, so the benchmark runs from a clean clone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import reachable, start_service, start_worker, stop_process, stop_service  # noqa: E402
from vodscribe.db.session import migrate, session_scope  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
            stop_process(worker)
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
