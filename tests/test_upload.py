"""Direct upload from a computer (Gcore's TUS flow): ``GET /streaming/videos/{id}/upload`` and the TUS
server at ``/upload/``.

The app runs on a real uvicorn server on 127.0.0.1; uploads go through the real TUS client (tuspy)
or raw HTTP where a test needs a request no well-behaved client sends. The finished upload's media job
and AI task run in this process (real ffmpeg and Whisper), as in test_clip."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import gcore
import httpx
import pytest
import uvicorn
from gcore import Gcore
from sqlalchemy import select
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

from tests.conftest import BUCKET, DATA, S3_CREDENTIALS, free_port, postgres_database
from tests.waiting import eventually
from vodscribe.api.app import create_app
from vodscribe.api.routers import tus
from vodscribe.cli.upload_client import state_file
from vodscribe.config import Settings
from vodscribe.db.session import migrate, session_scope, sql_engine
from vodscribe.db.statuses import JobState, TaskStatus, VideoStatus
from vodscribe.db.tables import AITask, Client, Subtitle, Video
from vodscribe.services import uploads
from vodscribe.services.clients import create_client
from vodscribe.storage.uploads import ID
from vodscribe.worker.ai_task_runner import run_task
from vodscribe.worker.reaper import reap
from vodscribe.worker.video_runner import run_video

SPEECH = DATA / "jfk_librivox.mp4"  # 24 s; JFK "... ask not what your country ..." in 0-11 s
TUS = {"Tus-Resumable": "1.0.0"}


@dataclass
class Live:
    settings: Settings
    base: str
    key: str
    other_key: str
    api: httpx.Client
    server: uvicorn.Server
    thread: threading.Thread

    def sdk(self, key: str | None = None) -> Gcore:
        return Gcore(api_key=key or self.key, base_url=self.base, max_retries=0)


def _serve(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    eventually(lambda: server.started, timeout=30, what="uvicorn started")
    return server, thread, f"http://127.0.0.1:{port}"


def _stop(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    with _running(Settings(data_dir=tmp_path, upload_min_free_bytes=0, allow_private_urls=True)) as found:
        yield found


@contextlib.contextmanager
def _running(settings: Settings) -> Iterator[Live]:
    """The service on ``settings`` (migrated here) in this process, with clients ``a`` and ``b``."""
    migrate(settings.db_url)
    with session_scope(settings.db_url) as s:
        _, key = create_client(s, "a")
        _, other_key = create_client(s, "b")
    server, thread, base = _serve(settings)
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"APIKey {key}"}, timeout=30) as api:
            yield Live(settings, base, key, other_key, api, server, thread)
    finally:
        _stop(server, thread)


def _video(live: Live, **fields: Any) -> dict[str, Any]:
    r = live.api.post("/streaming/videos", json={"video": {"name": "upload", **fields}})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _params(live: Live, video_id: int) -> dict[str, Any]:
    r = live.api.get(f"/streaming/videos/{video_id}/upload")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _metadata(params: dict[str, Any], filename: str = "talk.mp4") -> dict[str, str]:
    return {
        "filename": filename,
        "token": params["token"],
        "video_id": str(params["video"]["id"]),
        "client_id": str(params["video"]["client_id"]),
    }


def _header(metadata: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items())


def _create(live: Live, metadata: dict[str, str], length: int) -> httpx.Response:
    headers = {**TUS, "Upload-Length": str(length), "Upload-Metadata": _header(metadata)}
    return httpx.post(f"{live.base}/upload/", headers=headers)


def _patch(url: str, offset: int, body: bytes, **headers: str) -> httpx.Response:
    sent = {**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)}
    return httpx.patch(url, content=body, headers={**sent, **headers})


def _offset(url: str) -> int:
    r = httpx.head(url, headers=TUS)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store", r.headers
    return int(r.headers["upload-offset"])


def _sha1(body: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(body).digest()).decode()


def _row(live: Live, video_id: int) -> Video:
    with session_scope(live.settings.db_url) as s:
        video = s.get(Video, video_id)
        assert video is not None
        s.expunge(video)
        return video


def _stored_uploads(live: Live, video: dict[str, Any]) -> list[Path]:
    """The uploaded files kept in the media store for the video (``source/upload-<upload id>``)."""
    source = live.settings.data_dir / "videos" / f"{video['client_id']}_{video['slug']}" / "source"
    return sorted(source.glob("upload*")) if source.is_dir() else []


def _stored_upload(live: Live, video: dict[str, Any]) -> Path:
    """The one uploaded file kept for the video: the one its row names."""
    [path] = _stored_uploads(live, video)
    assert path.name == Path(str(_row(live, video["id"]).uploaded_source)).name
    return path


def _partial_uploads(live: Live) -> list[Path]:
    """The folders of unfinished uploads (beside them: the creation lock and the used tokens)."""
    root = live.settings.uploads_dir
    return sorted(p for p in root.iterdir() if ID.fullmatch(p.name)) if root.is_dir() else []


# --- upload parameters -----------------------------------------------------------------------------


def test_the_gcore_sdk_gets_direct_upload_parameters(live: Live) -> None:
    sdk = live.sdk()
    created = sdk.streaming.videos.create(video={"name": "from my computer"})
    params = sdk.streaming.videos.get_parameters_for_direct_upload(created.id)
    port = live.base.rsplit(":", 1)[1]
    assert params.servers == [{"id": 1, "hostname": f"127.0.0.1:{port}"}]
    assert params.token and isinstance(params.token, str)
    assert isinstance(params.video, dict) and params.video["id"] == created.id
    assert params.video["status"] == "empty" and params.video["client_id"] == created.client_id

    with pytest.raises(gcore.NotFoundError):  # another client's video
        live.sdk(live.other_key).streaming.videos.get_parameters_for_direct_upload(created.id)


def test_no_upload_for_a_video_with_an_origin_url(live: Live) -> None:
    video = _video(live, origin_url="http://127.0.0.1:8080/never-fetched.mp4")
    r = live.api.get(f"/streaming/videos/{video['id']}/upload")
    assert r.status_code == 409, r.text
    assert "origin_url" in r.json()["error"]


def test_options_lists_the_server_s_capabilities(live: Live) -> None:
    r = httpx.options(f"{live.base}/upload/")
    assert r.status_code == 204
    assert r.headers["tus-version"] == "1.0.0"
    assert set(r.headers["tus-extension"].split(",")) == {"creation", "termination", "checksum", "expiration"}
    assert int(r.headers["tus-max-size"]) == live.settings.fetch_max_bytes
    assert "sha1" in r.headers["tus-checksum-algorithm"].split(",")


# --- the whole flow ----------------------------------------------------------------------------------


@pytest.mark.slow  # Whisper in this process
def test_an_uploaded_video_is_processed_to_ready_with_ai_subtitles(live: Live) -> None:
    video = _video(live, clip_start_seconds=0, clip_duration_seconds=11, auto_transcribe_audio_language="eng")
    params = _params(live, video["id"])
    endpoint = f"http://{params['servers'][0]['hostname']}/upload/"
    uploader = TusClient(endpoint).uploader(
        str(SPEECH), chunk_size=64 * 1024, metadata=_metadata(params), upload_checksum=True
    )
    uploader.upload()
    assert uploader.offset == SPEECH.stat().st_size
    assert _stored_upload(live, video).read_bytes() == SPEECH.read_bytes()
    assert _partial_uploads(live) == []
    stored = _row(live, video["id"])
    assert (stored.job_state, stored.upload_filename, stored.origin_url) == (
        JobState.QUEUED,
        "talk.mp4",
        None,
    )
    again = live.api.get(f"/streaming/videos/{video['id']}/upload")
    assert again.status_code == 409, again.text  # its file is being processed

    assert run_video(live.settings, video["id"]) == VideoStatus.READY
    with session_scope(live.settings.db_url) as s:
        [task] = s.scalars(select(AITask).where(AITask.video_id == video["id"]))
        task_id = task.id
    assert run_task(live.settings, task_id) == TaskStatus.SUCCESS

    done = live.api.get(f"/streaming/videos/{video['id']}").json()
    assert done["status"] == "ready" and 10_500 <= done["duration"] <= 11_500, done
    assert done["converted_videos"] and all(r["status"] == "complete" for r in done["converted_videos"])
    assert httpx.get(done["hls_url"]).status_code == 200
    with session_scope(live.settings.db_url) as s:
        [sub] = s.scalars(select(Subtitle).where(Subtitle.video_id == video["id"]))
        assert "your country" in sub.vtt.lower(), sub.vtt
    assert _stored_uploads(live, video) == []  # deleted once the job ended
    assert _row(live, video["id"]).uploaded_source is None
    assert live.api.get(f"/streaming/videos/{video['id']}/upload").status_code == 409


def test_an_interrupted_upload_resumes_after_a_restart(live: Live) -> None:
    video = _video(live, auto_transcribe_audio_language="disable")
    params = _params(live, video["id"])
    first = TusClient(f"{live.base}/upload/").uploader(
        str(SPEECH), chunk_size=50_000, metadata=_metadata(params)
    )
    first.upload_chunk()  # then the connection "drops"
    assert first.url is not None and _offset(first.url) == 50_000

    # The service restarts on another port: the upload's state is on disk, not in the process.
    _stop(live.server, live.thread)
    server, thread, base = _serve(live.settings)
    try:
        url = first.url.replace(live.base, base)
        assert _offset(url) == 50_000
        resumed = TusClient(f"{base}/upload/").uploader(str(SPEECH), url=url, chunk_size=80_000)
        resumed.upload()
        assert resumed.offset == SPEECH.stat().st_size
    finally:
        _stop(server, thread)
    assert _stored_upload(live, video).read_bytes() == SPEECH.read_bytes()
    assert _row(live, video["id"]).job_state == JobState.QUEUED


# --- refused uploads ---------------------------------------------------------------------------------


def test_wrong_expired_and_foreign_tokens_are_refused(live: Live) -> None:
    mine = _video(live)
    params = _params(live, mine["id"])
    other = live.sdk(live.other_key).streaming.videos.create(video={"name": "theirs"})

    r = _create(live, {**_metadata(params), "token": params["token"][:-4] + "0000"}, 10)
    assert r.status_code == 401 and "not valid" in r.json()["error"], r.text

    # My token presented for another client's video (or with another client_id) does not fit it.
    r = _create(live, {**_metadata(params), "video_id": str(other.id)}, 10)
    assert r.status_code == 401, r.text
    r = _create(live, {**_metadata(params), "video_id": str(other.id), "client_id": str(other.client_id)}, 10)
    assert r.status_code == 401, r.text

    past = live.settings.model_copy(update={"upload_token_ttl_s": -60})
    expired = uploads.issue_token(past, mine["client_id"], mine["id"])
    r = _create(live, {**_metadata(params), "token": expired}, 10)
    assert r.status_code == 401 and "expired" in r.json()["error"], r.text

    r = _create(live, {k: v for k, v in _metadata(params).items() if k != "token"}, 10)
    assert r.status_code == 401, r.text
    assert _partial_uploads(live) == []


def test_limits_size_and_free_disk(live: Live) -> None:
    params = _params(live, _video(live)["id"])
    r = _create(live, _metadata(params), live.settings.upload_limit + 1)
    assert r.status_code == 413 and "limit" in r.json()["error"], r.text
    live.settings.upload_min_free_bytes = 2**62  # the app's own settings object
    r = _create(live, _metadata(params), 10)
    assert r.status_code == 507, r.text
    assert _partial_uploads(live) == []


def test_an_html_file_uploaded_as_a_video_ends_it_in_error(live: Live, tmp_path: Path) -> None:
    video = _video(live)
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><html><head><title>Login</title></head><body>x</body></html>" * 20)
    uploader = TusClient(f"{live.base}/upload/").uploader(
        str(page), metadata=_metadata(_params(live, video["id"]))
    )
    with pytest.raises(TusCommunicationError) as raised:
        uploader.upload()
    assert raised.value.status_code == 422
    body = live.api.get(f"/streaming/videos/{video['id']}").json()
    assert body["status"] == "error" and body["error"].startswith("The uploaded file is not a video"), body
    assert "an HTML page" in body["error"] and "URL" not in body["error"], body  # about the file sent
    assert _stored_uploads(live, video) == [] and _partial_uploads(live) == []
    assert _row(live, video["id"]).job_state == JobState.IDLE  # nothing queued
    # The video can take another upload.
    assert live.api.get(f"/streaming/videos/{video['id']}/upload").status_code == 200


def test_a_checksum_mismatch_discards_the_chunk(live: Live) -> None:
    data = SPEECH.read_bytes()
    r = _create(live, _metadata(_params(live, _video(live)["id"])), len(data))
    assert r.status_code == 201, r.text
    url = r.headers["location"]
    chunk = data[:100_000]
    bad = _patch(url, 0, chunk, **{"Upload-Checksum": _sha1(chunk[:-1])})
    assert bad.status_code == 460, bad.text
    assert _offset(url) == 0
    upload_id = url.rsplit("/", 1)[1]
    assert uploads.files(live.settings).data_path(upload_id).stat().st_size == 0
    assert _patch(url, 0, chunk, **{"Upload-Checksum": "crc32 AAAA"}).status_code == 400
    good = _patch(url, 0, chunk, **{"Upload-Checksum": _sha1(chunk)})
    assert good.status_code == 204 and good.headers["upload-offset"] == "100000", good.text


def test_patch_checks_offset_type_length_and_version(live: Live) -> None:
    r = _create(live, _metadata(_params(live, _video(live)["id"])), 1000)
    url = r.headers["location"]
    assert _patch(url, 0, b"\0" * 100).status_code == 204
    wrong = _patch(url, 0, b"\0" * 100)
    assert wrong.status_code == 409 and "100" in wrong.json()["error"], wrong.text
    assert _patch(url, 100, b"\0" * 901).status_code == 413  # past Upload-Length
    assert _offset(url) == 100
    assert _patch(url, 100, b"x", **{"Content-Type": "application/json"}).status_code == 415
    assert _patch(url, 100, b"x", **{"Tus-Resumable": "0.2.2"}).status_code == 412
    assert httpx.head(f"{live.base}/upload/{'0' * 32}", headers=TUS).status_code == 404
    assert httpx.head(f"{live.base}/upload/..%2F..%2Fetc", headers=TUS).status_code == 404


def test_a_patch_waits_for_another_on_the_same_upload(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    r = _create(live, _metadata(_params(live, _video(live)["id"])), 1000)
    url = r.headers["location"]
    store = uploads.files(live.settings)
    held = store.try_lock(url.rsplit("/", 1)[1])  # as another process writing to it would
    assert held is not None
    monkeypatch.setattr(tus, "LOCK_WAIT_S", 0.3)
    try:
        busy = _patch(url, 0, b"\0" * 10)
        assert busy.status_code == 423, busy.text
    finally:
        store.unlock(held)
    assert _patch(url, 0, b"\0" * 10).status_code == 204


def test_termination_deletes_the_upload(live: Live) -> None:
    r = _create(live, _metadata(_params(live, _video(live)["id"])), 1000)
    url = r.headers["location"]
    assert _patch(url, 0, b"\0" * 10).status_code == 204
    assert httpx.delete(url, headers=TUS).status_code == 204
    assert httpx.head(url, headers=TUS).status_code == 404
    assert _patch(url, 10, b"\0").status_code == 404
    assert _partial_uploads(live) == []


def test_the_reaper_removes_abandoned_partial_uploads(live: Live) -> None:
    video_id = _video(live)["id"]
    kept = _create(live, _metadata(_params(live, video_id)), 1000).headers["location"]
    live.settings.upload_expiry_s = 0.0  # uploads created now have expired at once
    abandoned = _create(live, _metadata(_params(live, video_id)), 1000)
    assert abandoned.status_code == 201 and "GMT" in abandoned.headers["upload-expires"]
    eventually(lambda: uploads.files(live.settings).expired(time.time()), timeout=5)
    reap(live.settings)
    assert [p.name for p in _partial_uploads(live)] == [kept.rsplit("/", 1)[1]]
    assert httpx.head(abandoned.headers["location"], headers=TUS).status_code == 404
    assert _offset(kept) == 0


def test_with_s3_the_upload_is_a_private_object_any_worker_reads(tmp_path: Path, s3_endpoint: str) -> None:
    settings = Settings(
        data_dir=tmp_path,
        upload_min_free_bytes=0,
        s3_bucket=BUCKET,
        s3_endpoint_url=s3_endpoint,
        s3_access_key=S3_CREDENTIALS["aws_access_key_id"],
        s3_secret_key=S3_CREDENTIALS["aws_secret_access_key"],
        s3_prefix=f"up{tmp_path.name}",
    )
    with _running(settings) as live:
        video = _video(
            live, clip_start_seconds=0, clip_duration_seconds=4, auto_transcribe_audio_language="disable"
        )
        params = _params(live, video["id"])
        TusClient(f"{live.base}/upload/").uploader(str(SPEECH), metadata=_metadata(params)).upload()
        name = _row(live, video["id"]).uploaded_source
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, **S3_CREDENTIALS)
    folder = f"{settings.s3_prefix}/{video['client_id']}_{video['slug']}/"
    assert name is not None and name.startswith(uploads.UPLOADED + "-")
    uploaded = folder + name
    assert s3.get_object(Bucket=BUCKET, Key=uploaded)["Body"].read() == SPEECH.read_bytes()
    assert httpx.get(f"{s3_endpoint}/{BUCKET}/{uploaded}").status_code == 403  # not public
    assert not (tmp_path / "videos").exists() and _partial_uploads(live) == []

    assert run_video(settings, video["id"]) == VideoStatus.READY
    objects = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=folder).get("Contents", [])]
    assert folder + "vod240p.mp4" in objects and folder + "master.m3u8" in objects, objects
    assert uploaded not in objects  # deleted once the job ended


# --- vodscribe upload (the command line, as a real subprocess) ---------------------------------------


def _cli(live: Live, cache: Path, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VODSCRIBE_API_URL": live.base,
        "VODSCRIBE_API_KEY": key or live.key,
        "XDG_CACHE_HOME": str(cache),
    }
    return subprocess.run(
        [sys.executable, "-m", "vodscribe.cli", "upload", *args, "--quiet"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_cli_uploads_a_file_as_a_new_video(live: Live, tmp_path: Path) -> None:
    done = _cli(live, tmp_path / "cache", str(SPEECH), "--name", "JFK")
    assert done.returncode == 0, done.stderr
    video = json.loads(done.stdout)
    assert video["name"] == "JFK" and video["status"] == "empty" and video["origin_url"] is None
    assert _stored_upload(live, video).read_bytes() == SPEECH.read_bytes()
    row = _row(live, video["id"])
    assert (row.job_state, row.upload_filename) == (JobState.QUEUED, SPEECH.name)
    assert not list((tmp_path / "cache" / "vodscribe" / "uploads").glob("*.json"))  # nothing to resume


def test_the_cli_resumes_an_interrupted_upload(live: Live, tmp_path: Path) -> None:
    video = _video(live, name="interrupted")
    created = _create(live, _metadata(_params(live, video["id"])), SPEECH.stat().st_size)
    url = created.headers["location"]
    assert _patch(url, 0, SPEECH.read_bytes()[:50_000]).status_code == 204
    # What an earlier run that was interrupted there left behind.
    state_dir = tmp_path / "cache" / "vodscribe" / "uploads"
    state_dir.mkdir(parents=True)
    state_file(state_dir, SPEECH).write_text(json.dumps({"video_id": video["id"], "upload_url": url}))

    done = _cli(live, tmp_path / "cache", str(SPEECH))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"] == video["id"]  # the same video, not a new one
    assert _stored_upload(live, video).read_bytes() == SPEECH.read_bytes()
    assert live.api.get("/streaming/videos").headers["x-total-count"] == "1"


def test_the_cli_says_why_an_upload_is_refused(live: Live, tmp_path: Path) -> None:
    bad_key = _cli(live, tmp_path / "cache", str(SPEECH), key="nope")
    assert bad_key.returncode != 0 and "Token is invalid or expired" in bad_key.stderr, bad_key.stderr
    page = tmp_path / "page.mp4"
    page.write_text("<!DOCTYPE html><html><body>not a video</body></html>")
    html = _cli(live, tmp_path / "cache", str(page))
    assert html.returncode != 0 and "not a video" in html.stderr, html.stderr


@pytest.mark.parametrize("checked", [False, True])
def test_a_body_cut_short_keeps_what_arrived_unless_checksummed(live: Live, checked: bool) -> None:
    data = SPEECH.read_bytes()[:100_000]
    url = _create(live, _metadata(_params(live, _video(live)["id"])), len(data)).headers["location"]
    upload_id = url.rsplit("/", 1)[1]
    written = uploads.files(live.settings).data_path(upload_id)
    checksum = f"Upload-Checksum: {_sha1(data)}\r\n" if checked else ""
    head = (
        f"PATCH /upload/{upload_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
        f"Content-Length: {len(data)}\r\n{checksum}\r\n"
    )
    port = int(live.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head.encode() + data[:60_000])
        eventually(lambda: written.stat().st_size == 60_000, timeout=30, what="60000 bytes on disk")
    # The connection dropped: unchecked bytes count (the client resumes after them); a checksummed
    # chunk cannot be verified, so none of it does.
    kept = 0 if checked else 60_000
    eventually(lambda: _offset(url) == kept, timeout=30, what=f"offset {kept}")
    r = _patch(url, kept, data[kept:])  # the lock was given back
    assert r.status_code == 204 and r.headers["upload-offset"] == str(len(data)), r.text


@pytest.mark.parametrize("then", ["resume", "terminate"])
def test_a_client_gone_unseen_lets_go_of_the_upload_when_asked(
    live: Live, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    """A PATCH whose client vanished without closing its connection (a cut network) would hold the
    upload until its read timeout; a request that wants the upload asks it to let go, and gets it."""
    monkeypatch.setattr(tus, "READ_TIMEOUT_S", 600.0)  # far longer than any wait below
    data = SPEECH.read_bytes()[:100_000]
    url = _create(live, _metadata(_params(live, _video(live)["id"])), len(data)).headers["location"]
    upload_id = url.rsplit("/", 1)[1]
    written = uploads.files(live.settings).data_path(upload_id)
    head = (
        f"PATCH /upload/{upload_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    port = int(live.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as stale:  # stays open, sending nothing more
        stale.sendall(head.encode() + data[:60_000])
        # (the last few KiB may wait in the writer's buffer until the request ends)
        eventually(lambda: written.stat().st_size >= 50_000, timeout=30, what="the bytes on disk")
        if then == "terminate":
            assert httpx.delete(url, headers=TUS, timeout=30).status_code == 204
            assert httpx.head(url, headers=TUS).status_code == 404
            return
        # Resuming: the offset the server had acknowledged may lag what the stale request kept, in
        # which case the PATCH is refused with 409 and the client asks again, as tus clients do.
        offset = _offset(url)
        r = _patch(url, offset, data[offset:])
        if r.status_code == 409:
            offset = _offset(url)
            r = _patch(url, offset, data[offset:])
        assert offset == 60_000
        assert r.status_code == 204 and r.headers["upload-offset"] == str(len(data)), r.text


def test_an_upload_on_postgresql(tmp_path: Path) -> None:
    """Migration 0007 on PostgreSQL, and the finished upload queued there."""
    with postgres_database() as url:
        settings = Settings(data_dir=tmp_path, database_url=url, upload_min_free_bytes=0)
        try:
            with _running(settings) as live:
                video = _video(live)
                TusClient(f"{live.base}/upload/").uploader(
                    str(SPEECH), metadata=_metadata(_params(live, video["id"]), filename="ünïcode name.mp4")
                ).upload()
                row = _row(live, video["id"])
                assert row.job_state == JobState.QUEUED
                assert (row.uploaded_source or "").startswith(uploads.UPLOADED + "-")
                assert row.upload_filename == "ünïcode name.mp4"
        finally:
            sql_engine(settings.db_url).dispose()  # before the database is dropped


# --- tenants, tokens and limits (hardening 2) --------------------------------------------------------


def _other(live: Live) -> httpx.Client:
    return httpx.Client(base_url=live.base, headers={"Authorization": f"APIKey {live.other_key}"}, timeout=30)


def test_an_upload_never_lands_in_another_client_s_video(live: Live) -> None:
    """Client a deletes its video before its upload's last byte; client b's next video must neither
    get that id nor the file: the upload ended with the video."""
    mine = _video(live, auto_transcribe_audio_language="disable")
    body = SPEECH.read_bytes()
    url = _create(live, _metadata(_params(live, mine["id"])), len(body)).headers["location"]
    assert _patch(url, 0, body[:-10]).status_code == 204
    assert live.api.delete(f"/streaming/videos/{mine['id']}").status_code == 204
    with _other(live) as other:
        r = other.post("/streaming/videos", json={"video": {"name": "theirs"}})
        assert r.status_code == 200, r.text
        theirs = r.json()
    assert theirs["id"] != mine["id"]  # ids are never handed out twice
    r = _patch(url, len(body) - 10, body[-10:])
    assert r.status_code == 404, r.text
    row = _row(live, theirs["id"])
    assert (row.status, row.job_state, row.uploaded_source) == (VideoStatus.EMPTY, JobState.IDLE, None)
    assert _stored_uploads(live, theirs) == [] and _partial_uploads(live) == []


def test_an_upload_finishes_only_into_the_video_it_was_made_for(live: Live) -> None:
    """Even when the row under the video's id is not the video the upload was made for (a database
    restored from a backup, a reused id), the upload does not finish into it."""
    mine = _video(live, auto_transcribe_audio_language="disable")
    body = SPEECH.read_bytes()
    url = _create(live, _metadata(_params(live, mine["id"])), len(body)).headers["location"]
    with session_scope(live.settings.db_url) as s:
        row = s.get(Video, mine["id"])
        assert row is not None
        row.slug = "AnotherVideo0000"  # as if this id now held another video
    r = _patch(url, 0, body)
    assert r.status_code == 404 and "deleted" in r.json()["error"], r.text
    assert _row(live, mine["id"]).uploaded_source is None


def test_a_token_makes_one_upload(live: Live) -> None:
    params = _params(live, _video(live)["id"])
    assert _create(live, _metadata(params), 1000).status_code == 201
    again = _create(live, _metadata(params), 1000)
    assert again.status_code == 409 and "has been used" in again.json()["error"], again.text
    assert len(_partial_uploads(live)) == 1


def test_open_uploads_are_capped_per_client(live: Live) -> None:
    live.settings.upload_max_open_per_client = 2
    for _ in range(2):
        assert _create(live, _metadata(_params(live, _video(live)["id"])), 1000).status_code == 201
    refused = _create(live, _metadata(_params(live, _video(live)["id"])), 1000)
    assert refused.status_code == 429 and "unfinished uploads" in refused.json()["error"], refused.text
    # The other client is not held back by this one's uploads.
    with _other(live) as other:
        theirs = other.post("/streaming/videos", json={"video": {"name": "theirs"}}).json()
        params = other.get(f"/streaming/videos/{theirs['id']}/upload").json()
    assert _create(live, _metadata(params), 1000).status_code == 201
    assert len(_partial_uploads(live)) == 3


def test_declared_bytes_are_capped_per_client(live: Live) -> None:
    live.settings.upload_max_pending_bytes_per_client = 10_000
    assert _create(live, _metadata(_params(live, _video(live)["id"])), 6_000).status_code == 201
    refused = _create(live, _metadata(_params(live, _video(live)["id"])), 6_000)
    assert refused.status_code == 429 and "declare" in refused.json()["error"], refused.text
    assert _create(live, _metadata(_params(live, _video(live)["id"])), 4_000).status_code == 201


def test_uploads_created_together_reserve_the_disk_they_declare(live: Live) -> None:
    """Free space is checked against every open upload's missing bytes, not per upload: five created
    together never promise more than the disk has above the minimum."""
    free = shutil.disk_usage(live.settings.data_dir).free
    declared = 50 * 1024**2
    # Room for two and a half of them above the minimum (other writers on the disk: some slack).
    live.settings.upload_min_free_bytes = free - 5 * declared // 2
    tokens = [_metadata(_params(live, _video(live)["id"])) for _ in range(5)]
    with ThreadPoolExecutor(5) as pool:
        codes = sorted(pool.map(lambda m: _create(live, m, declared).status_code, tokens))
    assert codes == [201, 201, 507, 507, 507], codes


def test_creating_uploads_counts_against_the_client_s_rate_limit(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        upload_min_free_bytes=0,
        allow_private_urls=True,
        rate_limit_per_s=1,
        rate_limit_burst=2,
    )
    with _running(settings) as live:
        metas = [
            {"token": uploads.issue_token(settings, c, v), "video_id": str(v), "client_id": str(c)}
            for c, v in _direct_videos(live, 3)
        ]
        codes = [_create(live, m, 100) for m in metas]
    assert [r.status_code for r in codes] == [201, 201, 429], [r.text for r in codes]
    assert int(codes[2].headers["retry-after"]) >= 1


def _direct_videos(live: Live, count: int) -> list[tuple[int, int]]:
    """(client id, video id) of ``count`` videos of client a made in the database: API requests would
    spend its rate."""
    made = []
    with session_scope(live.settings.db_url) as s:
        client_id = s.scalars(select(Client.id).where(Client.name == "a")).one()
        for n in range(count):
            video = Video(client_id=client_id, slug=f"Direct{n:010d}", name="direct")
            s.add(video)
            s.flush()
            made.append((client_id, video.id))
    return made


def test_of_two_uploads_finishing_together_the_acknowledged_one_is_kept(live: Live) -> None:
    """Two uploads of one video send their last bytes at once: one is answered 204, the other 409,
    and the file kept is the one answered 204 (repeated: it is a race)."""
    plain = SPEECH.read_bytes()
    bodies = (plain, plain + b"\0" * 4096)  # both media; told apart by their size
    for _ in range(6):
        video = _video(live, auto_transcribe_audio_language="disable")
        urls = []
        for body in bodies:
            url = _create(live, _metadata(_params(live, video["id"])), len(body)).headers["location"]
            assert _patch(url, 0, body[:-1]).status_code == 204
            urls.append(url)
        start = threading.Barrier(2)

        def finish(n: int, urls: list[str] = urls, start: threading.Barrier = start) -> int:
            start.wait()
            return _patch(urls[n], len(bodies[n]) - 1, bodies[n][-1:]).status_code

        with ThreadPoolExecutor(2) as pool:
            codes = list(pool.map(finish, (0, 1)))
        assert sorted(codes) == [204, 409], codes
        kept = bodies[codes.index(204)]
        assert _stored_upload(live, video).read_bytes() == kept
        assert _partial_uploads(live) == []


@pytest.mark.parametrize("digits", ["²", "①", "١٢", "５"])
def test_unicode_digits_are_refused_not_a_server_error(live: Live, digits: str) -> None:
    """``str.isdigit`` is true for "²" and "①", which ``int`` refuses: each is a clear 400 (401 for a
    token), and the connection goes on serving the next request. Headers arrive as Latin-1, where
    "²" is one byte; metadata is base64 UTF-8 and carries any of them."""
    url = _create(live, _metadata(_params(live, _video(live)["id"])), 1000).headers["location"]
    path = url.replace(live.base, "")
    b64 = base64.b64encode(digits.encode()).decode()
    token = base64.b64encode(f"{digits}.{'0' * 16}.{'0' * 64}".encode()).decode()
    with httpx.Client(base_url=live.base, headers=TUS) as tus_client:
        meta = _header(_metadata(_params(live, _video(live)["id"])))
        r = tus_client.post("/upload/", headers={"Upload-Length": b"\xb2", "Upload-Metadata": meta})
        assert r.status_code == 400, r.text
        patch = {"Content-Type": "application/offset+octet-stream", "Upload-Offset": b"\xb2"}
        r = tus_client.patch(path, content=b"x", headers=patch)
        assert r.status_code == 400, r.text
        for field in ("video_id", "client_id"):
            fields = dict(pair.split(" ") for pair in meta.split(","))
            bad = ",".join(f"{k} {b64 if k == field else v}" for k, v in fields.items())
            r = tus_client.post("/upload/", headers={"Upload-Length": "10", "Upload-Metadata": bad})
            assert r.status_code == 400 and field in r.json()["error"], r.text
        fields = dict(pair.split(" ") for pair in meta.split(","))
        bad = ",".join(f"{k} {token if k == 'token' else v}" for k, v in fields.items())
        r = tus_client.post("/upload/", headers={"Upload-Length": "10", "Upload-Metadata": bad})
        assert r.status_code == 401 and "malformed" in r.json()["error"], r.text
        assert tus_client.head(path).status_code == 200  # the connection goes on
    r = live.api.get("/streaming/videos", params={"search": digits})
    assert r.status_code == 200 and r.json() == [], r.text


def test_a_filename_with_control_characters_is_refused(live: Live) -> None:
    for name in ("talk\x00.mp4", "two\nlines.mp4"):
        r = _create(live, _metadata(_params(live, _video(live)["id"]), filename=name), 10)
        assert r.status_code == 400 and "filename" in r.json()["error"], r.text
    assert _partial_uploads(live) == []
