"""``/metrics``: the token, the deployment's state after known work (in-process), and a real
Prometheus scraping a running ``vodscribe serve`` (whose worker processes count into one folder) with
PromQL queries that return the numbers the work made; the alert rules checked and fired with
promtool; the Grafana dashboard's every query accepted by that Prometheus."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import (
    MediaServer,
    Service,
    free_port,
    start_service,
    start_worker,
    stop_service,
    unavailable,
    wait_for,
)
from tests.processes import serving, stop_group
from tests.waiting import eventually
from vodscribe.api.app import create_app
from vodscribe.config import Settings
from vodscribe.db.session import migrate, session_scope
from vodscribe.services.clients import create_client

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "vodscribe.json"
TOKEN = "metrics-token-for-tests"
URL = "https://93.184.215.14/video.mp4"  # a public address literal: no DNS, and no worker runs here


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(name, FileNotFoundError("apt-get install -y --no-install-recommends prometheus"))
    return path


# --- in-process -----------------------------------------------------------------------------------
@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path, metrics_token=TOKEN, rate_limit_per_s=0)
    migrate(s.db_url)
    return s


def test_metrics_need_the_token_and_are_off_without_one(settings: Settings, tmp_path: Path) -> None:
    with TestClient(create_app(settings)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/metrics", headers={"Authorization": f"APIKey {TOKEN}"}).status_code == 401
        ok = c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
        assert ok.headers["cache-control"] == "no-store"
    off = Settings(data_dir=tmp_path)
    with TestClient(create_app(off)) as c:
        assert c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    assert "/metrics" not in json.dumps(create_app(settings).openapi())


def test_the_state_after_known_work(settings: Settings) -> None:
    """Three tasks of one client, one of another, and a video waiting for its media job: the queue's
    messages, the tasks by status and client, the oldest waits."""
    with session_scope(settings.db_url) as s:
        alice, alice_key = create_client(s, "alice")
        bob, bob_key = create_client(s, "bob")
    with TestClient(create_app(settings)) as c:
        for key, count in ((alice_key, 3), (bob_key, 1)):
            for _ in range(count):
                r = c.post(
                    "/streaming/ai/tasks", json={"url": URL}, headers={"Authorization": f"APIKey {key}"}
                )
                assert r.status_code == 201, r.text
        video = {"name": "v", "origin_url": URL}
        assert c.post(
            "/streaming/videos", json=video, headers={"Authorization": f"APIKey {bob_key}"}
        ).is_success
        text = c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    got = _samples(text)
    assert got[("vodscribe_ai_tasks", (("status", "PENDING"),))] == 4
    assert got[("vodscribe_queue_messages", (("queue", "asr"),))] == 4
    assert got[("vodscribe_queue_messages", (("queue", "media"),))] == 1
    assert got[("vodscribe_queue_messages", (("queue", "webhooks"),))] == 0
    assert got[("vodscribe_client_ai_tasks", (("client_id", str(alice.id)), ("status", "PENDING")))] == 3
    assert got[("vodscribe_client_ai_tasks", (("client_id", str(bob.id)), ("status", "PENDING")))] == 1
    assert got[("vodscribe_video_jobs", (("state", "queued"),))] == 1
    for queue in ("asr", "media"):
        assert 0 <= got[("vodscribe_queue_oldest_seconds", (("queue", queue),))] < 60
    assert got[("vodscribe_queue_oldest_seconds", (("queue", "webhooks"),))] == 0


# --- promtool -------------------------------------------------------------------------------------
def test_alert_rules_are_valid_and_fire_on_their_tests() -> None:
    promtool = _tool("promtool")
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    tested = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


# --- a real Prometheus scraping a running service --------------------------------------------------
@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``vodscribe serve`` with a metrics token and JSON logs."""
    env = {"VODSCRIBE_METRICS_TOKEN": TOKEN, "VODSCRIBE_LOG_FORMAT": "json"}
    svc = start_service(tmp_path_factory.mktemp("measured"), env)
    yield svc
    stop_service(svc)


@pytest.fixture
def prometheus(tmp_path: Path, measured: Service) -> Iterator[str]:
    binary = _tool("prometheus")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "vodscribe",
                "static_configs": [{"targets": [measured.base_url.removeprefix("http://")]}],
                "authorization": {"type": "Bearer", "credentials": TOKEN},
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    base = f"http://127.0.0.1:{port}"
    command = [
        binary, f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
    ]  # fmt: skip

    def ready() -> bool:
        return httpx.get(f"{base}/-/ready", timeout=2).status_code == 200

    with serving(command, tmp_path / "prometheus.log", ready, timeout_s=60, what="Prometheus ready"):
        yield base


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", (expr, body)
    return list(body["data"]["result"])


def _done_tasks(service: Service) -> int:
    with httpx.Client(base_url=service.base_url, headers=service.headers(), timeout=30) as api:
        return int(api.get("/streaming/ai/tasks", params={"status": "SUCCESS"}).json()["count"])


def _value(prometheus: str, expr: str) -> float | None:
    result = _query(prometheus, expr)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_the_numbers_known_work_made(
    measured: Service, prometheus: str, media_server: MediaServer
) -> None:
    with httpx.Client(base_url=measured.base_url, headers=measured.headers(), timeout=30) as api:
        assert api.get("/metrics").status_code == 401  # the API key is not the metrics token
        task = api.post("/streaming/ai/tasks", json={"url": media_server.url("ldc93s1.wav")}).json()
        assert wait_for(api, task["task_id"], timeout=300)["status"] == "SUCCESS"
    before = _value(prometheus, 'sum(vodscribe_jobs_total{kind="ai_task", outcome="success"})') or 0
    assert before <= 1  # this module's other test may have run first, with one task of its own

    def scraped(expr: str, expected: float) -> bool:
        return _value(prometheus, expr) == expected

    # Counted in the embedded Celery worker's process, served by the API's: one folder, summed.
    done = _done_tasks(measured)
    eventually(
        lambda: scraped('sum(vodscribe_jobs_total{kind="ai_task", outcome="success"})', done),
        timeout=60, interval=0.5, what="the tasks counted by Prometheus",
    )  # fmt: skip
    assert _value(prometheus, 'max(vodscribe_ai_tasks{status="SUCCESS"})') == done
    assert _value(prometheus, 'sum(vodscribe_job_wait_seconds_count{kind="ai_task"})') == done
    assert (
        _value(prometheus, 'sum(vodscribe_job_run_seconds_count{kind="ai_task", outcome="success"})') == done
    )
    # The speech of the one file this module sends is recognised once; a later task reuses it.
    assert _value(prometheus, "sum(vodscribe_asr_realtime_factor_count)") == 1
    media = _value(prometheus, 'sum(vodscribe_media_seconds_total{kind="ai_task"})')
    assert media is not None and 2.5 * done < media < 3.5 * done  # ldc93s1.wav lasts 2.92 s
    assert (_value(prometheus, "sum(vodscribe_model_load_seconds_count)") or 0) >= 1
    assert _value(prometheus, 'max(vodscribe_queue_messages{queue="asr"})') == 0
    assert _value(prometheus, 'up{job="vodscribe"}') == 1
    # The alert rules loaded and evaluate; none fires on a healthy service.
    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == 6 and all(rule["health"] == "ok" for rule in rules), rules
    assert all(rule["state"] == "inactive" for rule in rules), rules
    # Every query of the dashboard is one this Prometheus accepts.
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 15
    for expr in exprs:
        _query(prometheus, expr)


def test_json_logs_name_the_request_the_task_and_the_video(
    measured: Service, media_server: MediaServer
) -> None:
    """VODSCRIBE_LOG_FORMAT=json: the API's and the worker's lines are JSON objects, and those of a
    request's and a task's work carry its ids."""
    request_id = "log-test-0001"
    headers = {**measured.headers(), "X-Request-ID": request_id}
    with httpx.Client(base_url=measured.base_url, headers=headers, timeout=30) as api:
        # Two tasks on one file: whatever ran before, the second reuses the first's recognition.
        first = api.post("/streaming/ai/tasks", json={"url": media_server.url("ldc93s1.wav")}).json()
        assert wait_for(api, first["task_id"], timeout=300)["status"] == "SUCCESS"
        created = api.post("/streaming/ai/tasks", json={"url": media_server.url("ldc93s1.wav")})
        assert created.headers["x-request-id"] == request_id
        task_id = created.json()["task_id"]
        assert wait_for(api, task_id, timeout=300)["status"] == "SUCCESS"
        forged = api.get("/health", headers={"X-Request-ID": 'x" INFO forged'})
        assert forged.headers["x-request-id"] != 'x" INFO forged'  # not a sane id: a new one instead

    def lines() -> list[dict[str, Any]]:
        text = (measured.data_dir / "serve.log").read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def logged() -> bool:  # the runner's: the recognition of this file is reused (or faster-whisper's)
        return any(
            line.get("task_id") == task_id and line["logger"].startswith("vodscribe.") for line in lines()
        )

    eventually(logged, timeout=30, what="the worker's lines of the task")
    objects = lines()
    assert all({"timestamp", "level", "logger", "message"} <= line.keys() for line in objects)
    access = [
        line
        for line in objects
        if line["logger"] == "uvicorn.access" and "/streaming/ai/tasks" in line["message"]
    ]
    assert any(line["request_id"] == request_id and "POST" in line["message"] for line in access), access[-3:]
    mine = [line for line in objects if line.get("task_id") == task_id]
    assert {line["logger"].split(".")[0] for line in mine} >= {"vodscribe", "httpx"}  # its download too
    text = (measured.data_dir / "serve.log").read_text(errors="replace")
    assert " INFO vodscribe." not in text  # no line of ours in the text format
    # Every task of this module reads one file, recognised once: the later ones reuse it and count
    # as jobs and media seconds, but their near-zero time is no real-time factor of the model.
    scraped = httpx.get(f"{measured.base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    got = _samples(scraped)
    jobs = got[("vodscribe_jobs_total", (("kind", "ai_task"), ("outcome", "success")))]
    rtf = sum(value for (name, _), value in got.items() if name == "vodscribe_asr_realtime_factor_count")
    assert (jobs, rtf) == (_done_tasks(measured), 1)


def test_a_separate_worker_serves_its_own_counts(tmp_path: Path, media_server: MediaServer) -> None:
    """Scale-out: the API counts no job (it runs none) but still reports the deployment's state; the
    worker's own port reports the job its pool process ran (prefork: counted in a child process)."""
    port = free_port()
    env = {"VODSCRIBE_METRICS_TOKEN": TOKEN, "VODSCRIBE_METRICS_PORT": str(port)}
    svc = start_service(tmp_path / "svc", env, args=("serve", "--no-worker"))
    worker = start_worker(svc, "-Q", "asr,media", "--pool", "prefork")
    try:
        with httpx.Client(base_url=svc.base_url, headers=svc.headers(), timeout=30) as api:
            task = api.post("/streaming/ai/tasks", json={"url": media_server.url("ldc93s1.wav")}).json()
            assert wait_for(api, task["task_id"], timeout=300)["status"] == "SUCCESS"
            # An event of the API process itself: an upload created and terminated through it.
            video = api.post("/streaming/videos", json={"name": "upload"}).json()
            params = api.get(f"/streaming/videos/{video['id']}/upload").json()
            meta = {"filename": "a.mp4", "token": params["token"], "video_id": str(video["id"])}
            meta["client_id"] = str(video["client_id"])
            header = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())
            tus = {"Tus-Resumable": "1.0.0", "Upload-Length": "10", "Upload-Metadata": header}
            created = httpx.post(f"{svc.base_url}/upload/", headers=tus)
            assert created.status_code == 201, created.text
            assert httpx.delete(created.headers["location"], headers=tus).status_code == 204
            served = api.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
        api_samples = _samples(served)
        assert api_samples[("vodscribe_ai_tasks", (("status", "SUCCESS"),))] == 1
        assert not [key for key in api_samples if key[0] == "vodscribe_jobs_total"]  # it ran none
        assert api_samples[("vodscribe_uploads_total", (("event", "created"),))] == 1
        assert api_samples[("vodscribe_uploads_total", (("event", "terminated"),))] == 1

        def worker_counted() -> dict[Any, float]:
            got = _samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
            assert got.get(("vodscribe_jobs_total", (("kind", "ai_task"), ("outcome", "success")))) == 1
            return got

        got = eventually(worker_counted, timeout=30, what="the worker's count of the task")
        assert (
            got[
                (
                    "vodscribe_asr_realtime_factor_count",
                    (("device", "cpu"), ("model", "whisper-base (bundled)")),
                )
            ]
            == 1
        )
    finally:
        stop_group(worker)
        stop_service(svc)
