"""What a server says when its translation is incomplete: the startup log, /ai/info and the failed
task name what is missing and the one command that adds it. And /ai/info lists each backend's languages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from vodscribe.api.app import create_app
from vodscribe.config import Settings
from vodscribe.db.session import migrate, session_scope
from vodscribe.db.tables import AITask
from vodscribe.engines import llm
from vodscribe.services import translation_backends
from vodscribe.services.clients import create_client
from vodscribe.worker.ai_task_runner import run_task


@pytest.fixture
def without_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As on a machine where vodscribe[llm] could not be built."""
    monkeypatch.setattr(llm, "llm_available", lambda: False)
    translation_backends._translators.cache_clear()
    yield
    translation_backends._translators.cache_clear()


def _app(tmp_path: Path, **settings: object) -> tuple[TestClient, Settings]:
    config = Settings(data_dir=tmp_path, llm_model="bundled", rate_limit_per_s=0, **settings)  # type: ignore[arg-type]
    migrate(config.db_url)
    with session_scope(config.db_url) as s:
        _, key = create_client(s, "a")
    return TestClient(create_app(config), headers={"Authorization": f"APIKey {key}"}), config


def test_a_server_without_the_llm_says_what_is_missing(tmp_path: Path, without_llm: None) -> None:
    client, config = _app(tmp_path)
    hint = translation_backends.missing(config)
    assert hint is not None and "pip install 'vodscribe[llm]'" in hint
    r = client.get("/streaming/ai/info", params={"type": "language_support", "audio_language": "eng",
                                                 "subtitles_language": "ger"})  # fmt: skip
    assert r.json() == {"supported": False, "missing": hint}
    r = client.get("/streaming/ai/info", params={"type": "language_support", "audio_language": "ger",
                                                 "subtitles_language": "eng"})  # fmt: skip
    assert r.json() == {"supported": True}  # Whisper translates into English
    listed = client.get("/streaming/ai/info", params={"type": "translation_languages"}).json()
    assert listed == {"backends": [{"name": "whisper", "targets": ["eng"]}], "missing": hint}
    # The Gcore guide's own request fails with the reason and the command, before any download.
    with session_scope(config.db_url) as s:
        task = AITask(client_id=1, status="PENDING", task_data={"url": "https://93.184.215.14/a.mp4",
                      "audio_language": "eng", "subtitles_language": "ger"})  # fmt: skip
        s.add(task)
        s.flush()
        task_id = task.id
    assert run_task(config, task_id) == "FAILURE"
    with session_scope(config.db_url) as s:
        done = s.get(AITask, task_id)
        assert done is not None and done.result is not None
        error = done.result["error"]
    assert error.startswith("Translation from English to German is not supported by this server")
    assert error.endswith(f"On this server {hint}.")


def test_a_server_with_the_llm_lists_its_languages(tmp_path: Path) -> None:
    client, config = _app(tmp_path)
    assert translation_backends.missing(config) is None
    listed = client.get("/streaming/ai/info", params={"type": "translation_languages"}).json()
    by_name = {b["name"].split(":")[0]: b["targets"] for b in listed["backends"]}
    assert by_name["whisper"] == ["eng"]
    assert {"ger", "fre", "spa", "chi"} <= set(by_name["llm"]) and "uzb" not in by_name["llm"]
    assert "missing" not in listed
    r = client.get("/streaming/ai/info", params={"type": "language_support", "audio_language": "eng",
                                                 "subtitles_language": "ger"})  # fmt: skip
    assert r.json() == {"supported": True}
