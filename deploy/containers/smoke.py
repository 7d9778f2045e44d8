"""The scale-out compose stack, end to end: a video from a media server on the compose network with
AI subtitles and one translation; of the two asr workers, the one running the task killed (SIGKILL)
in the middle of it and started again; both subtitles attached; /metrics telling what happened, and
the stack's Prometheus scraping the API and every worker replica, with the alert rules loaded.

Run by deploy/containers/smoke.sh, which builds the images, brings the stack up and always takes it
down; this script only talks to it:
    python deploy/containers/smoke.py PROJECT API_URL TOKEN PROMETHEUS_URL
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


def psql(project: str, sql: str) -> str:
    return podman("exec", f"{project}_postgres_1", "psql", "-At", "-d", "vodscribe", "-c", sql)


def container_running(project: str, task_id: str) -> str | None:
    """The asr container whose worker holds the task (its ``worker`` is ``hostname:pid``)."""
    worker = psql(project, f"select worker from ai_tasks where id = '{task_id}' and status = 'STARTED'")
    if not worker:
        return None
    names = podman("ps", "--filter", f"name={project}_asr_", "--format", "{{.Names}}").split()
    hosts = {podman("inspect", "--format", "{{.Config.Hostname}}", name): name for name in names}
    return hosts.get(worker.split(":")[0])


def check_prometheus(url: str, workers: int) -> dict[str, float]:
    """The stack's Prometheus scrapes the API and every worker replica, has the alert rules, and its
    PromQL answers the numbers of the work done."""
    prometheus = httpx.Client(base_url=url, timeout=30)

    def series(promql: str) -> list[tuple[dict[str, str], float]]:
        """Each answered series' labels and value."""
        answer = prometheus.get("/api/v1/query", params={"query": promql}).json()
        return [(found["metric"], float(found["value"][1])) for found in answer["data"]["result"]]

    def query(promql: str) -> list[float]:
        return [value for _, value in series(promql)]

    def all_up() -> bool:
        return (
            len(query('up{job="vodscribe-api"} == 1')) == 1
            and len(query('up{job="vodscribe-workers"} == 1')) == workers
        )

    eventually(all_up, timeout=120, interval=2, what=f"Prometheus scraping the API and {workers} workers")
    expected = {
        'max(vodscribe_ai_tasks{status="SUCCESS"})': 2.0,
        'max(vodscribe_video_jobs{state="done"})': 1.0,
        'sum(vodscribe_jobs_total{job="vodscribe-workers", kind="ai_task", outcome="success"})': 2.0,
        'count(up{job="vodscribe-workers", service="asr"} == 1)': 2.0,
    }

    def answers() -> dict[str, float] | None:
        got = {promql: (query(promql) or [float("nan")])[0] for promql in expected}
        return got if got == expected else None

    got = eventually(answers, timeout=120, interval=3, what=f"PromQL answering {expected}")
    rules = prometheus.get("/api/v1/rules").json()["data"]["groups"]
    loaded = [rule for group in rules for rule in group["rules"] if rule["health"] == "ok"]
    assert len(loaded) == 6, rules
    recognised = query('sum(vodscribe_asr_realtime_factor_count{job="vodscribe-workers"})')
    assert recognised and recognised[0] >= 1, recognised
    # Counted where it happened: the API's reaper, or the asr worker that took the job over.
    reaped = 'sum by (action) (vodscribe_jobs_reaped_total{kind="ai_task"})'
    taken_back = {labels["action"]: value for labels, value in series(reaped)}
    assert sum(taken_back.values()) >= 1, f"nobody counted taking the killed worker's task back: {taken_back}"
    return {**got, **{f"taken back ({action})": n for action, n in taken_back.items()}}


def main(project: str, base: str, token: str, prometheus_url: str) -> None:
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
    holder = eventually(
        lambda: container_running(project, task_id),
        timeout=60,
        interval=0.5,
        what="the asr container holding it",
    )
    podman("kill", "--signal", "KILL", holder)
    print(f"smoke: {holder} killed during task {task_id} at {time.monotonic() - started:.0f} s", flush=True)
    time.sleep(2)
    podman("start", holder)

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
    rows = psql(project, f"select status, attempts from ai_tasks where id = '{task_id}'")
    print(f"smoke: the killed task (status, attempts): {rows}", flush=True)
    assert rows == "SUCCESS|2", rows
    promql = check_prometheus(prometheus_url, workers=4)  # media, two asr, webhooks
    print(f"smoke: Prometheus scrapes the API and 4 workers; {promql}", flush=True)
    print(json.dumps({"smoke": "ok", "seconds": round(time.monotonic() - started)}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
