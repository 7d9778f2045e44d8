"""Translation backends as configured in a running service: the backend order, `/ai/info`, tasks
translated by an operator's CTranslate2 model, clear failures, and a refused broken setup."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import webvtt

from tests import nmt_models
from tests.conftest import MediaServer, Service, start_service, stop_service, wait_for
from vodscribe.config import Settings
from vodscribe.engines.text_translator import TranslationError
from vodscribe.languages import resolve
from vodscribe.services.translation_backends import TranslationConfigError, can_translate, translators_for

ENG, GER, SPA, FRE = (resolve(c) for c in ("eng", "ger", "spa", "fre"))


@pytest.fixture(scope="module")
def opus_en_es(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real OPUS-MT-layout CTranslate2 model (random weights) for English -> Spanish."""
    root = tmp_path_factory.mktemp("nmt-svc")
    sp = nmt_models.train_sentencepiece(root / "spm")
    return nmt_models.opus_mt_model(root / "opus-mt-en-es", sp)


@pytest.fixture(scope="module")
def nmt_service(tmp_path_factory: pytest.TempPathFactory, opus_en_es: Path) -> Iterator[Service]:
    svc = start_service(
        tmp_path_factory.mktemp("svc-nmt"),
        {"VODSCRIBE_TRANSLATION_BACKENDS": "nmt,whisper", "VODSCRIBE_NMT_MODELS": str(opus_en_es)},
    )
    yield svc
    stop_service(svc)


@pytest.fixture
def api(nmt_service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=nmt_service.base_url, headers=nmt_service.headers(), timeout=30) as c:
        yield c


def test_backends_follow_the_configured_order(opus_en_es: Path, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, translation_backends="whisper, nmt", nmt_models=str(opus_en_es), llm_model=""
    )
    names = [b.name for b in translators_for(settings)]
    assert names == ["whisper", "nmt:opus-mt-en-es"]
    assert can_translate(settings, ENG, SPA) and can_translate(settings, GER, ENG)
    assert not can_translate(settings, ENG, FRE) and not can_translate(settings, SPA, GER)
    with pytest.raises(TranslationConfigError, match="Unknown translation backend"):
        translators_for(Settings(data_dir=tmp_path, translation_backends="nmt,deepl"))
    with pytest.raises(TranslationError, match="does not exist"):
        translators_for(Settings(data_dir=tmp_path, nmt_models=str(tmp_path / "missing")))
    pinned = Settings(data_dir=tmp_path, translation_backends="nmt", nmt_models=f"{opus_en_es}=en-es")
    assert [b.name for b in translators_for(pinned)] == ["nmt:opus-mt-en-es"]


@pytest.mark.slow  # a vodscribe serve whose worker loads Whisper
def test_language_info_reflects_the_configured_backends(api: httpx.Client) -> None:
    def supported(audio: str, subs: str) -> bool:
        params = {"type": "language_support", "audio_language": audio, "subtitles_language": subs}
        return api.get("/streaming/ai/info", params=params).json()["supported"]

    assert supported("eng", "spa") and supported("ger", "eng") and supported("eng", "eng")
    assert not supported("eng", "fre")  # no LLM in this service's list
    assert not supported("ger", "spa")  # the model only reads English


@pytest.mark.slow  # a vodscribe serve whose worker loads Whisper
def test_task_translated_by_the_operators_model(api: httpx.Client, media_server: MediaServer) -> None:
    r = api.post(
        "/streaming/ai/tasks",
        json={"url": media_server.url("ldc93s1.wav"), "audio_language": "eng", "subtitles_language": "spa"},
    )
    task = wait_for(api, r.json()["task_id"])
    assert task["status"] == "SUCCESS", task
    result = task["result"]
    assert result["languages"] == ["eng", "spa"]
    cues = webvtt.from_string(result["vttContent"])
    assert len(cues) >= 1 and "greasy" not in result["vttContent"]  # it is not the English text
    for cue in cues:  # laid over the 2.9 s of speech, each cue within the subtitle limits
        assert 0.0 <= cue.start_in_seconds < 2.9 and cue.end_in_seconds - cue.start_in_seconds <= 7.0
        assert len(cue.text.split("\n")) <= 2


@pytest.mark.slow  # a vodscribe serve whose worker loads Whisper
def test_unavailable_language_fails_with_the_choice(api: httpx.Client, media_server: MediaServer) -> None:
    r = api.post(
        "/streaming/ai/tasks",
        json={"url": media_server.url("ldc93s1.wav"), "audio_language": "eng", "subtitles_language": "fre"},
    )
    task = wait_for(api, r.json()["task_id"])
    assert task["status"] == "FAILURE"
    assert task["result"]["error"] == (
        "Translation from English to French is not supported by this server "
        "(subtitle languages it can translate into: English, Spanish)."
    )


def test_a_broken_model_directory_stops_the_service_from_starting(tmp_path: Path) -> None:
    env = {
        "VODSCRIBE_DATA_DIR": str(tmp_path),
        "VODSCRIBE_NMT_MODELS": str(tmp_path / "no-such-model"),
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-m", "vodscribe.cli", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    assert "Translation setup: NMT model directory" in out.stderr and "does not exist" in out.stderr
    assert not (tmp_path / "vodscribe.db").exists()  # refused before touching anything
