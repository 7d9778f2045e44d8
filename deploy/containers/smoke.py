"""The scale-out compose stack, end to end: a video from a media server on the compose network with
AI subtitles and one translation, the asr worker killed (SIGKILL) in the middle of a task and started
again, both subtitles attached, and /metrics telling what happened.

Run by deploy/containers/smoke.sh, which builds the images, brings the stack up and always takes it
down; this script only talks to it: python deploy/containers/smoke.py PROJECT API_URL TOKEN
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: its tests' helpers
from tests.waiting import eventually


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True).stdout.strip()


def _parse(text: str) -> dict[str, float]:
    """``name{labels}`` to value, of Prometheus' text format."""
    lines = (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {name: float(value) for name, value in lines}


def main(project: str, base: str, token: str) -> None:
    started = time.monotonic()
    key = podman("exec", f"{project}_api_1", "cat", "/data/admin-api-key.txt")
    api = httpx.Client(base_url=base, headers={"Authorization": f"APIKey {key}"}, timeout=30)
    body = {
        "name": "smoke",
        "origin_url": "http://mediasrv:8080/jfk_librivox.mp4",
        "auto_transcribe_audio_language": "auto",
        "auto_translate_subtitles_language": "ger",
    }
    video = api.post("/streaming/videos", json={"video": body}).json()
    print(f"smoke: video {video['id']} created", flush=True)

    def a_task_started() -> str | None:
        tasks = api.get("/streaming/ai/tasks", params={"status": "STARTED"}).json()["results"]
        return tasks[0]["task_id"] if tasks else None

    task_id = eventually(a_task_started, timeout=300, interval=1, what="an AI task under way")
    podman("kill", "--signal", "KILL", f"{project}_asr_1")
    print(f"smoke: asr worker killed during task {task_id} at {time.monotonic() - started:.0f} s", flush=True)
    time.sleep(2)
    podman("start", f"{project}_asr_1")

    def both_subtitles() -> list[str] | None:
        names = sorted(s["name"] for s in api.get(f"/streaming/videos/{video['id']}/subtitles").json())
        return names if len(names) == 2 else None

    names = eventually(both_subtitles, timeout=600, interval=1, what="both subtitles attached")
    assert names == ["English (AI-generated)", "German (AI-translated)"], names
    assert api.get(f"/streaming/videos/{video['id']}").json()["status"] == "ready"
    task = api.get(f"/streaming/ai/tasks/{task_id}").json()
    assert task["status"] == "SUCCESS", task
    print(f"smoke: ready with {names} at {time.monotonic() - started:.0f} s", flush=True)

    metrics = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30).text
    lines = _parse(metrics)
    assert lines['vodscribe_ai_tasks{status="SUCCESS"}'] == 2, metrics
    assert lines['vodscribe_video_jobs{state="done"}'] == 1, metrics
    rows = podman(
        "exec", f"{project}_postgres_1", "psql", "-At", "-d", "vodscribe", "-c",
        f"select status, attempts from ai_tasks where id = '{task_id}'",
    )  # fmt: skip
    # Events are counted where they happen: the API's reaper, or the asr worker that took the job over.
    fetch = "import urllib.request; print(urllib.request.urlopen('http://asr:9100/metrics').read().decode())"
    worker = _parse(podman("exec", f"{project}_api_1", "python3", "-c", fetch))
    reaped = {
        k: v for k, v in (*lines.items(), *worker.items()) if k.startswith("vodscribe_jobs_reaped_total")
    }
    print(f"smoke: the killed task (status, attempts): {rows}; taken back: {reaped}", flush=True)
    assert rows == "SUCCESS|2", rows
    assert sum(reaped.values()) >= 1, "nobody counted taking the killed worker's task back"
    assert worker.get('vodscribe_jobs_total{kind="ai_task",outcome="success"}', 0) >= 1, worker
    print(json.dumps({"smoke": "ok", "seconds": round(time.monotonic() - started), "taken_back": reaped}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
