"""The speech dialects end to end: OpenAI's audio API through the real ``openai`` SDK, and
whisper-asr-webservice's ``/asr`` with exactly what Bazarr's whisperai provider sends, against a
real ``vodscribe serve`` (API, its worker, SQLite); each request is an AI task of the server."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import imageio_ffmpeg
import openai
import pytest
import srt
import webvtt

from tests.conftest import DATA, Service, in_process_api, wait_for
from tests.waiting import eventually
from vodscribe.config import Settings

ENGLISH = DATA / "ldc93s1.wav"  # "She had your dark suit in greasy wash water all year."
GERMAN = DATA / "cheetah_test_de.wav"


@pytest.fixture(scope="module")
def client(service: Service) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=service.api_key, base_url=service.base_url + "/v1", max_retries=0) as c:
        yield c


def _fresh_copy(source: Path, folder: Path) -> Path:
    """``source`` with a tag of its own: the same audio in bytes no other test sent, so it is
    recognised, not answered from a recognition the session's service kept."""
    out = folder / source.name
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(source), "-c", "copy",
         "-metadata", f"comment={folder.name}", str(out)],
        check=True,
    )  # fmt: skip
    return out


def _words(text: str) -> set[str]:
    return {w.strip(".,!?").lower() for w in text.split()}


# --- OpenAI ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_openai_sdk_every_response_format(client: openai.OpenAI, service: Service) -> None:
    with ENGLISH.open("rb") as f:
        raw = client.audio.transcriptions.with_raw_response.create(file=f, model="whisper-1")
    task_id = raw.headers["x-task-id"]
    text = raw.parse().text
    assert {"dark", "suit", "greasy"} <= _words(text), text

    # The request was an AI task of this server, listed as every other.
    with httpx.Client(base_url=service.base_url, headers=service.headers()) as api:
        task = wait_for(api, task_id)
    assert task["status"] == "SUCCESS" and task["task_data"]["url"] == "upload:ldc93s1.wav"
    assert task["result"]["concatenated_text"] == text

    with ENGLISH.open("rb") as f:
        verbose = client.audio.transcriptions.create(
            file=f,
            model="whisper-1",
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    assert verbose.language == "english" and verbose.text == text
    assert 2.5 < verbose.duration < 3.5
    assert verbose.segments and verbose.words
    assert all(0 <= s.start < s.end <= verbose.duration + 0.1 for s in verbose.segments)
    assert all(0 <= w.start <= w.end <= verbose.duration + 0.1 for w in verbose.words)
    assert {"dark", "suit"} <= {w.word.strip(".,").lower() for w in verbose.words}

    with ENGLISH.open("rb") as f:
        plain = client.audio.transcriptions.create(file=f, model="whisper-1", response_format="text")
    assert plain.strip() == text

    with ENGLISH.open("rb") as f:
        subrip = client.audio.transcriptions.create(file=f, model="whisper-1", response_format="srt")
    cues = list(srt.parse(subrip))
    assert cues and all(len(line) <= 42 for c in cues for line in c.content.splitlines())

    with ENGLISH.open("rb") as f:
        vtt = client.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="vtt", language="en"
        )
    assert webvtt.from_string(vtt).captions


@pytest.mark.slow
def test_openai_sdk_streams_segments_then_the_text(client: openai.OpenAI) -> None:
    with GERMAN.open("rb") as f:
        events = list(client.audio.transcriptions.create(file=f, model="whisper-1", stream=True))
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done", kinds
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    segments = [e for e in events if e.type == "transcript.text.segment"]
    assert deltas and len(segments) == len(deltas)
    assert all(s.start < s.end for s in segments)
    assert " ".join(d.strip() for d in deltas).split() == events[-1].text.split()


@pytest.mark.slow
def test_openai_translation_is_into_english(client: openai.OpenAI) -> None:
    with GERMAN.open("rb") as f:
        out = client.audio.translations.create(file=f, model="whisper-1", response_format="verbose_json")
    assert out.task == "translate" and out.text.strip()
    # Whisper's own translation writes English: none of the German function words is left.
    assert not _words(out.text) & {"und", "der", "die", "das", "ist", "nicht"}, out.text


def test_openai_errors_in_openai_shape(client: openai.OpenAI, service: Service) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.audio.transcriptions.create(file=ENGLISH.open("rb"), model="no-such-model")
    assert bad.value.body["param"] == "model" and "no-such-model" in bad.value.message
    with pytest.raises(openai.BadRequestError) as bad_format:
        client.audio.transcriptions.create(file=ENGLISH.open("rb"), model="whisper-1", response_format="mp3")  # type: ignore[call-overload]
    assert bad_format.value.body["param"] == "response_format"
    stranger = openai.OpenAI(api_key="1_not-a-key", base_url=service.base_url + "/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        stranger.audio.transcriptions.create(file=ENGLISH.open("rb"), model="whisper-1")
    assert (
        denied.value.body["type"] == "invalid_request_error"
        and denied.value.body["code"] == "invalid_api_key"
    )
    # Nothing was stored for any of them.
    assert not list((service.data_dir / "work" / "incoming").glob("*"))


@pytest.mark.slow
def test_eight_requests_at_once_all_answer(service: Service) -> None:
    key = service.new_key("eight-at-once")
    fresh = openai.OpenAI(api_key=key, base_url=service.base_url + "/v1", max_retries=0, timeout=600)

    def one(_: int) -> str:
        with ENGLISH.open("rb") as f:
            return fresh.audio.transcriptions.create(file=f, model="whisper-1", response_format="text")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    assert len(answers) == 8 and all({"dark", "suit"} <= _words(a) for a in answers)
    with httpx.Client(base_url=service.base_url, headers=service.headers(key)) as api:
        listed = api.get("/streaming/ai/tasks", params={"limit": 20}).json()
    assert listed["count"] == 8 and {t["status"] for t in listed["results"]} == {"SUCCESS"}


@pytest.mark.slow
def test_a_client_that_hangs_up_cancels_its_task(service: Service, tmp_path: Path) -> None:
    """The request is sent whole over a plain socket, and the socket closed once its task exists:
    the server sees the client gone while it waits, and cancels the task."""
    key = service.new_key("hangs-up")
    talk = _fresh_copy(DATA / "multilingual_en_de.mp3", tmp_path)
    boundary = "vodscribe-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="talk.mp3"\r\n'
            "Content-Type: audio/mpeg\r\n\r\n"
        ).encode()
        + talk.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    host, port = service.base_url.removeprefix("http://").split(":")
    head = (
        f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with httpx.Client(base_url=service.base_url, headers=service.headers(key)) as api:
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(head + body)

            def made() -> str:
                tasks = api.get("/streaming/ai/tasks").json()["results"]
                assert tasks and tasks[0]["status"] in ("PENDING", "STARTED"), tasks
                return tasks[0]["task_id"]

            task_id = eventually(made, timeout=60, interval=0.1, what="the request's task made")
        # The socket is closed: the client has hung up.

        def revoked() -> dict:
            task = api.get(f"/streaming/ai/tasks/{task_id}").json()
            assert task["status"] == "REVOKED", task
            return task

        eventually(revoked, timeout=60, what="the hung-up request's task revoked")
    # Its upload is deleted with it.
    eventually(
        lambda: not (service.data_dir / "videos" / f"task_{task_id}").exists(),
        timeout=30,
        what="the upload deleted",
    )


def test_queue_limit_and_size_limit(tmp_path: Path) -> None:
    """In process, no worker: the queue limit is OpenAI's 429, and an upload over the limit is
    refused as it streams (413), with nothing stored and no task made."""
    settings = Settings(data_dir=tmp_path, task_queue_limit=0, upload_max_bytes=50_000)
    with in_process_api(settings) as api:
        bearer = {"Authorization": api.headers["Authorization"].replace("APIKey", "Bearer")}
        full = api.post(
            "/v1/audio/transcriptions", headers=bearer, files={"file": ("a.wav", b"RIFF" + b"\0" * 1000)},
            data={"model": "whisper-1"},
        )  # fmt: skip
        assert full.status_code == 429, full.text
        assert full.json()["error"]["code"] == "rate_limit_exceeded"
        big = api.post(
            "/v1/audio/transcriptions", headers=bearer, files={"file": ("b.wav", ENGLISH.read_bytes())},
            data={"model": "whisper-1"},
        )  # fmt: skip
        assert big.status_code == 413, big.text
        assert set(big.json()["error"]) == {"message", "type", "param", "code"}
        assert api.get("/streaming/ai/tasks").json()["count"] == 0
    assert not list((tmp_path / "work" / "incoming").glob("*"))
    assert not list(tmp_path.glob("videos/task_*"))


# --- whisper-asr-webservice (Bazarr) --------------------------------------------------------------
def _pcm(path: Path) -> bytes:
    """What Bazarr's provider sends: the audio track as raw 16 kHz mono s16le (its ffmpeg call)."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    return subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-f", "s16le", "-acodec", "pcm_s16le",
         "-ac", "1", "-ar", "16000", "-af", "aresample=async=1", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip


def _bazarr_endpoint(service: Service, key: str) -> str:
    """The endpoint setting of Bazarr's provider, with the key as the URL's credentials."""
    return service.base_url.replace("http://", f"http://vodscribe:{key}@")


@pytest.mark.slow
def test_bazarr_detects_then_transcribes(service: Service) -> None:
    endpoint = _bazarr_endpoint(service, service.api_key)
    audio = _pcm(GERMAN)
    with httpx.Client(headers={"User-Agent": "Subliminal/2.1.0"}, timeout=300) as session:
        detected = session.post(
            f"{endpoint}/detect-language",
            params={"encode": "false"},
            files={"audio_file": ("audio_file", audio)},
        )
        assert detected.status_code == 200, detected.text
        body = detected.json()
        assert body["language_code"] == "de" and body["detected_language"] == "german"
        assert 0.5 <= body["confidence"] <= 1.0
        answered = session.post(
            f"{endpoint}/asr",
            params={"task": "transcribe", "language": "de", "output": "srt", "encode": "false"},
            files={"audio_file": ("audio_file", audio)},
        )
    assert answered.status_code == 200, answered.text
    assert answered.headers["asr-engine"] == "vodscribe"
    # The same bytes, now with the language detection found: not recognised a second time.
    log = (service.data_dir / "serve.log").read_text(errors="replace")
    assert f"task {answered.headers['x-task-id']}: reusing the recognition" in log
    cues = list(srt.parse(answered.text))
    assert cues and cues[-1].end.total_seconds() <= 9.0
    assert {"und", "der", "die", "das", "ist"} & _words(" ".join(c.content for c in cues))


@pytest.mark.slow
def test_subgen_shape_json_with_words_and_plain_outputs(service: Service) -> None:
    with httpx.Client(base_url=service.base_url, headers=service.headers(), timeout=300) as c:
        out = c.post(
            "/asr", params={"output": "json", "word_timestamps": "true", "encode": "true"},
            files={"audio_file": ("speech.wav", ENGLISH.read_bytes(), "audio/wav")},
        )  # fmt: skip
        assert out.status_code == 200, out.text
        assert out.headers["content-disposition"] == 'attachment; filename="speech.wav.json"'
        body = out.json()
        assert body["language"] == "en" and body["segments"]
        assert all(w["start"] <= w["end"] for s in body["segments"] for w in s["words"])
        tsv = c.post(
            "/asr", params={"output": "tsv"}, files={"audio_file": ("speech.wav", ENGLISH.read_bytes())}
        )
        header, *rows = tsv.text.splitlines()
        assert header == "start\tend\ttext" and rows
        assert all(int(r.split("\t")[0]) < int(r.split("\t")[1]) for r in rows)


def test_asr_needs_a_key_unless_anonymous_is_allowed(service: Service, tmp_path: Path) -> None:
    refused = httpx.post(service.base_url + "/asr", files={"audio_file": ("a", b"\0\0" * 100)})
    assert refused.status_code == 401 and "detail" in refused.json()
    wrong = httpx.post(
        _bazarr_endpoint(service, "1_wrong") + "/asr", files={"audio_file": ("a", b"\0\0" * 100)}
    )
    assert wrong.status_code == 401
    settings = Settings(data_dir=tmp_path, anonymous_speech_requests=True, task_queue_limit=0)
    with in_process_api(settings) as api:
        keyless = api.post("/asr", headers={"Authorization": ""}, files={"audio_file": ("a", b"\0\0" * 100)})
    assert keyless.status_code == 429, keyless.text  # let in as the anonymous client, whose queue is full


@pytest.mark.slow
def test_a_request_outlives_a_worker_that_dies(service: Service, tmp_path: Path) -> None:
    """The upload stays in the media store until the task has ended, so the task's second attempt,
    on the worker ``serve`` starts again, reads it; the waiting request gets that attempt's answer."""
    key = service.new_key("worker-dies")
    fresh = openai.OpenAI(api_key=key, base_url=service.base_url + "/v1", max_retries=0, timeout=600)
    talk = _fresh_copy(DATA / "multilingual_en_de.mp3", tmp_path)
    with ThreadPoolExecutor(1) as pool, talk.open("rb") as f:
        answer = pool.submit(
            fresh.audio.transcriptions.create, file=f, model="whisper-1", response_format="verbose_json"
        )
        with httpx.Client(base_url=service.base_url, headers=service.headers(key)) as api:

            def started() -> str:
                tasks = api.get("/streaming/ai/tasks").json()["results"]
                assert tasks and tasks[0]["status"] == "STARTED", tasks
                return tasks[0]["task_id"]

            task_id = eventually(started, timeout=60, interval=0.1, what="the request's task started")
        with sqlite3.connect(service.data_dir / "vodscribe.db") as db:
            worker = db.execute("select worker from ai_tasks where id = ?", (task_id,)).fetchone()[0]
        os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)
        out = answer.result(timeout=300)
    assert len(out.text.split()) > 50
    with sqlite3.connect(service.data_dir / "vodscribe.db") as db:
        attempts, upload = db.execute(
            "select attempts, upload from ai_tasks where id = ?", (task_id,)
        ).fetchone()
    assert attempts == 2 and upload is None  # run twice; its upload deleted once it ended
    with httpx.Client(base_url=service.base_url, headers=service.headers(key)) as api:
        assert api.get(f"/streaming/ai/tasks/{task_id}").json()["result"]["languages"] == ["eng", "ger"]


@pytest.mark.slow
def test_asr_translates_into_any_language_a_backend_offers(service: Service) -> None:
    with httpx.Client(base_url=service.base_url, headers=service.headers(), timeout=300) as c:
        out = c.post(
            "/asr", params={"output": "txt", "target_language": "de"},
            files={"audio_file": ("speech.wav", ENGLISH.read_bytes())},
        )  # fmt: skip
        assert out.status_code == 200, out.text
        task = c.get(f"/streaming/ai/tasks/{out.headers['x-task-id']}").json()
    assert task["task_data"]["subtitles_language"] == "ger" and task["result"]["languages"] == ["eng", "ger"]
    assert out.text.strip() and not {"dark", "suit", "greasy"} <= _words(out.text), out.text


HOTWORDS = DATA / "hotwords.mp3"  # faster-whisper's test clip: "ComfyUI", twice


@pytest.mark.slow
def test_a_vocabulary_in_either_dialect(client: openai.OpenAI, service: Service) -> None:
    with HOTWORDS.open("rb") as f:
        text = client.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="text", extra_body={"vocabulary": '["ComfyUI"]'}
        )
    assert text.count("ComfyUI") == 2, text
    with pytest.raises(openai.BadRequestError) as bad:
        client.audio.transcriptions.create(
            file=HOTWORDS.open("rb"), model="whisper-1", extra_body={"vocabulary_id": "999999"}
        )
    assert bad.value.body["param"] == "vocabulary_id"
    with httpx.Client(base_url=service.base_url, headers=service.headers(), timeout=300) as c:
        saved = c.post("/streaming/ai/vocabularies", json={"name": "tools", "terms": ["ComfyUI"]}).json()
        out = c.post(
            "/asr", params={"output": "txt", "vocabulary_id": str(saved["id"])},
            files={"audio_file": ("hotwords.mp3", HOTWORDS.read_bytes())},
        )  # fmt: skip
    assert out.status_code == 200 and out.text.count("ComfyUI") == 2, out.text
