"""The ``vodscribe`` command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MediaServer, llm_model_file

DATA = Path(__file__).parent / "data"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vodscribe.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.mark.slow  # vodscribe transcribe loads Whisper
def test_transcribe_file_to_json() -> None:
    out = run("transcribe", str(DATA / "ldc93s1.wav"), "--format", "json")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["languages"] == ["eng"] and body["speech_detected"] is True
    assert "dark suit" in " ".join(s["text"] for s in body["subtitles"]).lower()
    assert "100%" in out.stderr  # the progress bar reached the end


@pytest.mark.slow  # vodscribe transcribe loads Whisper
def test_transcribe_url_to_srt_with_language(media_server: MediaServer, tmp_path: Path) -> None:
    target = tmp_path / "out.srt"
    env = {**os.environ, "VODSCRIBE_ALLOW_PRIVATE_URLS": "true"}
    out = run(
        "transcribe", media_server.url("cheetah_test_de.wav"), "--format", "srt", "--language", "ger",
        "-o", str(target), "--quiet", env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = target.read_text()
    assert text.startswith("1\n00:00:")
    assert "Werbung" in text


@pytest.mark.slow  # vodscribe transcribe loads Whisper
def test_transcribe_and_translate(tmp_path: Path) -> None:
    env = {**os.environ, "VODSCRIBE_DATA_DIR": str(tmp_path), "VODSCRIBE_LLM_MODEL": str(llm_model_file())}
    out = run("transcribe", str(DATA / "cheetah_test_de.wav"), "--to", "eng", "--format", "text", env=env)
    assert out.returncode == 0, out.stderr
    assert "impression" in out.stdout.lower(), out.stdout  # "Die Werbung vermittelt einen falschen Eindruck."
    out = run("transcribe", str(DATA / "cheetah_test_de.wav"), "--to", "uzb", "--quiet", env=env)
    assert out.returncode == 1 and "from German to Uzbek is not supported" in out.stderr
    out = run("transcribe", str(DATA / "cheetah_test_de.wav"), "--to", "xx1", "--quiet", env=env)
    assert out.returncode == 2 and "--to" in out.stderr and "not recognized" in out.stderr


@pytest.mark.slow  # vodscribe transcribe loads Whisper
def test_transcribe_refuses_bad_input(tmp_path: Path) -> None:
    page = tmp_path / "page.mp4"
    page.write_text("<!doctype html><html><body>not a video</body></html>")
    out = run("transcribe", str(page), "--quiet")
    assert out.returncode == 1
    assert "HTML" in out.stderr
    out = run("transcribe", str(tmp_path / "missing.mp4"), "--quiet")
    assert out.returncode == 2 and "not a file" in out.stderr
    out = run("transcribe", str(DATA / "ldc93s1.wav"), "--language", "xx1", "--quiet")
    assert out.returncode == 2 and "not recognized" in out.stderr
    out = run("transcribe", "http://127.0.0.1:9/x.mp4", "--quiet")
    assert out.returncode == 1 and "private" in out.stderr


def test_keys_create_prints_a_working_key(tmp_path: Path) -> None:
    env = {**os.environ, "VODSCRIBE_DATA_DIR": str(tmp_path)}
    out = run("keys", "create", "alice", env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "client_id=1" and lines[1].startswith("1_") and len(lines[1]) > 40
