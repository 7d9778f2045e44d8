"""Models by name: the real ``huggingface_hub`` client pulls from a hub on 127.0.0.1 (``tests/hub.py``)
that serves real models: the bundled Whisper base under its catalogue repository, a tiny
transformers translation checkpoint made here (converted at pull time by CTranslate2's converter)
and a tiny GGUF. Nothing leaves 127.0.0.1: the endpoint setting points the client there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import DATA, MediaServer, start_service, stop_service, wait_for
from tests.hub import Hub, running_hub
from vodscribe.config import Settings
from vodscribe.engines import bundled_model
from vodscribe.models import catalogue
from vodscribe.models.catalogue import UnknownModelError, find
from vodscribe.models.pull import PullError, pull
from vodscribe.models.resolve import configured, load_path, locate, ref
from vodscribe.models.store import ModelChangedError, ModelNotPulledError, ModelStore, sha256_of

WHISPER_REPO = "Systran/faster-whisper-base"


@pytest.fixture(scope="module")
def whisper_files() -> dict[str, bytes]:
    """The real Whisper base files (the bundled model, hash-checked), as the hub serves them."""
    return bundled_model.load_files() | {"README.md": b"# faster-whisper-base\n"}


@pytest.fixture
def hub(whisper_files: dict[str, bytes]) -> Iterator[Hub]:
    with running_hub() as h:
        h.publish(WHISPER_REPO, whisper_files)
        yield h


def cli(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``vodscribe ARGS`` as an operator runs it, on ``data_dir``."""
    full = {
        **os.environ,
        "VODSCRIBE_DATA_DIR": str(data_dir),
        "HF_HOME": str(data_dir / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        **(env or {}),
    }
    full.pop("HF_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "vodscribe.cli", *args], env=full, capture_output=True, text=True, timeout=600
    )


# --- the catalogue ------------------------------------------------------------------------------


def test_speech_catalogue_is_faster_whispers_own_list() -> None:
    """Every name faster-whisper knows maps to the same CTranslate2 repository here."""
    from faster_whisper.utils import _MODELS

    for name, repo in _MODELS.items():
        assert find(name, "asr").repo == repo, name
    assert {m.name for m in catalogue.SPEECH} <= set(_MODELS)


def test_catalogue_entries_are_complete() -> None:
    names = [m.name for m in catalogue.CATALOGUE]
    assert len(names) == len(set(names))
    for m in catalogue.CATALOGUE:
        assert m.repo.count("/") == 1 and m.files and m.licence and m.size_gb > 0 and m.memory_gb > 0
        assert m.kind != "llm" or m.chat_languages
    assert not find("nllb-200-distilled-600m").commercial  # CC-BY-NC weights are flagged
    assert find("m2m100-418m").commercial and find("m2m100-418m").convert
    assert find("turbo").name == "large-v3-turbo" and find("large").name == "large-v3"
    opus = find("opus-mt-en-de")
    assert opus.repo == "Helsinki-NLP/opus-mt-en-de" and opus.convert and opus.kind == "nmt"
    with pytest.raises(UnknownModelError, match="large-v3-turbo"):
        find("large-v9", "asr")


def test_a_setting_is_a_name_bundled_or_a_path(tmp_path: Path) -> None:
    assert ref("asr", "large-v3-turbo").name == "large-v3-turbo"
    assert ref("asr", "bundled").model is None
    assert ref("asr", str(tmp_path)).model is None and ref("asr", "./models/x").model is None
    (tmp_path / "mymodel").mkdir()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert ref("asr", "mymodel").model is None  # an existing relative dir keeps working
    finally:
        os.chdir(cwd)
    with pytest.raises(UnknownModelError):
        ref("asr", "no-such-model")
    settings = Settings(
        data_dir=tmp_path, asr_model="large-v3", nmt_models="nllb-200-distilled-600m,/x/opus=en-de",
        llm_model="qwen2.5-7b-instruct", translation_backends="nmt,llm,whisper",
    )  # fmt: skip
    assert [(r.kind, r.name) for r in configured(settings)] == [
        ("asr", "large-v3"), ("nmt", "nllb-200-distilled-600m"), ("nmt", None),
        ("llm", "qwen2.5-7b-instruct"),
    ]  # fmt: skip
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ModelNotPulledError, match=r"run: vodscribe models pull large-v3$"):
        locate(ref("asr", "large-v3"), store)


# --- pulling -------------------------------------------------------------------------------------


def test_pull_records_hashes_and_the_model_transcribes_offline(hub: Hub, tmp_path: Path) -> None:
    """``models pull`` through the real hub client, then the service side loads it by name with the
    hub gone and HF_HUB_OFFLINE set: the offline route."""
    done = cli(tmp_path, "models", "pull", "base", env={"VODSCRIBE_HF_ENDPOINT": hub.url})
    assert done.returncode == 0, done.stderr
    lock = json.loads((tmp_path / "models" / "models.lock.json").read_text())["models"]["base"]
    assert lock["repo"] == WHISPER_REPO and lock["revision"] == hub.repos[WHISPER_REPO].commit
    assert lock["files"]["model.bin"]["sha256"] == bundled_model.MODEL_SHA256
    assert sorted(lock["files"]) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.json"]
    assert not (tmp_path / "models" / ".partial").exists()

    again = cli(tmp_path, "models", "pull", "base", env={"VODSCRIBE_HF_ENDPOINT": hub.url})
    assert again.returncode == 0 and "already pulled" in again.stderr
    assert len(hub.gets("/model.bin")) == 1

    listed = cli(tmp_path, "models", "list", env={"VODSCRIBE_ASR_MODEL": "base"}).stdout
    row = next(line for line in listed.splitlines() if line.startswith("base "))
    assert "yes" in row and "0.15G" in row and row.rstrip().endswith("asr")
    as_json = [json.loads(line) for line in cli(tmp_path, "models", "list", "--json").stdout.splitlines()]
    base = next(m for m in as_json if m["name"] == "base")
    assert base["pulled"] and base["disk_bytes"] == sum(v["size"] for v in lock["files"].values())
    assert base["revision"] == lock["revision"] and base["fits"] in ("CPU", "GPU")
    assert next(m for m in as_json if m["name"] == "nllb-200-distilled-600m")["commercial"] is False

    offline = {
        "HF_HUB_OFFLINE": "1",
        "VODSCRIBE_ASR_MODEL": "base",
        "VODSCRIBE_HF_ENDPOINT": "http://127.0.0.1:9",
    }
    refused = cli(tmp_path, "models", "pull", "tiny", env=offline)
    assert refused.returncode != 0 and "HF_HUB_OFFLINE" in refused.stderr
    out = cli(tmp_path, "transcribe", str(DATA / "ldc93s1.wav"), "--format", "text", "--quiet", env=offline)
    assert out.returncode == 0, out.stderr
    assert "dark suit" in out.stdout.lower()
    assert cli(tmp_path, "models", "verify").stdout.strip() == "base: ok"


def test_pull_resumes_a_cut_transfer(hub: Hub, tmp_path: Path) -> None:
    """Cut once mid-file, the client resumes with a Range request in the same pull; cut for good,
    the pull fails and the next run resumes from the bytes already on disk."""
    store = ModelStore(tmp_path / "models")
    hub.cut("model.bin", 30_000_000)
    pull(find("base"), store, endpoint=hub.url, progress=False)
    first, second = hub.gets("/model.bin")
    assert first.range is None and second.range == "bytes=30000000-"
    assert sha256_of(store.folder("base") / "model.bin") == bundled_model.MODEL_SHA256

    other = ModelStore(tmp_path / "other")
    hub.requests.clear()
    hub.cut("model.bin", 30_000_000, *[0] * 6)  # then the server keeps hanging up
    with pytest.raises(PullError, match="Run the same command again to resume"):
        pull(find("base"), other, endpoint=hub.url, progress=False)
    assert other.entry("base") is None and not other.folder("base").exists()
    hub.cuts.clear()
    hub.requests.clear()
    pull(find("base"), other, endpoint=hub.url, progress=False)
    [resumed] = hub.gets("/model.bin")
    assert resumed.range == "bytes=30000000-"  # from the bytes the failed run had written
    assert other.problems("base") == []


def test_a_changed_file_is_refused_and_named(hub: Hub, tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    pull(find("base"), store, endpoint=hub.url, progress=False)
    vocab = store.folder("base") / "vocabulary.json"
    data = bytearray(vocab.read_bytes())
    data[10] ^= 1  # same size, other bytes
    vocab.write_bytes(bytes(data))
    with pytest.raises(ModelChangedError, match=r"vocabulary\.json has sha256"):
        load_path(ref("asr", "base"), store)
    verify = cli(tmp_path, "models", "verify", "base")
    assert verify.returncode == 1 and "vocabulary.json: sha256" in verify.stdout

    from vodscribe.engines.whisper import engine_for

    with pytest.raises(ModelChangedError, match=r"vocabulary\.json"):
        engine_for(Settings(data_dir=tmp_path, asr_model="base"))

    # A re-pull pinned to the locked commit must bring the locked bytes back: the hub changed the
    # file under the same commit, so it is refused and the model left as it was.
    vocab.write_bytes(hub.repos[WHISPER_REPO].files["vocabulary.json"])
    hub.repos[WHISPER_REPO].files["config.json"] += b" "
    (store.folder("base") / "config.json").unlink()
    with pytest.raises(PullError, match=r"config\.json differs from the lock file"):
        pull(find("base"), store, endpoint=hub.url, progress=False)
    assert store.entry("base") is not None and not (store.folder("base") / "config.json").exists()


def test_remove_and_unknown_names(hub: Hub, tmp_path: Path) -> None:
    assert (
        cli(tmp_path, "models", "pull", "base", "--quiet", env={"VODSCRIBE_HF_ENDPOINT": hub.url}).returncode
        == 0
    )
    removed = cli(tmp_path, "models", "remove", "base")
    assert removed.returncode == 0 and not (tmp_path / "models" / "base").exists()
    assert json.loads((tmp_path / "models" / "models.lock.json").read_text())["models"] == {}
    assert cli(tmp_path, "models", "remove", "base").returncode != 0
    unknown = cli(tmp_path, "models", "pull", "whisper-huge", env={"VODSCRIBE_HF_ENDPOINT": hub.url})
    assert unknown.returncode != 0 and "Unknown model 'whisper-huge'" in unknown.stderr
    missing_repo = cli(tmp_path, "models", "pull", "tiny", env={"VODSCRIBE_HF_ENDPOINT": hub.url})
    assert missing_repo.returncode != 0 and "Systran/faster-whisper-tiny" in missing_repo.stderr


# --- serve and worker refuse names that are not pulled ------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("VODSCRIBE_ASR_MODEL", "large-v3-turbo"),
        ("VODSCRIBE_NMT_MODELS", "nllb-200-distilled-600m"),
        ("VODSCRIBE_LLM_MODEL", "qwen2.5-7b-instruct"),
    ],
)
def test_serve_and_worker_refuse_a_name_not_pulled(tmp_path: Path, setting: str, value: str) -> None:
    for command in ("serve", "worker"):
        done = cli(tmp_path, command, env={setting: value, "VODSCRIBE_PORT": "9"})
        assert done.returncode != 0
        assert f"run: vodscribe models pull {value}" in done.stderr, done.stderr
    # A media-only worker needs no model: it gets past the check and stops at the (unreachable) database.
    nodb = {setting: value, "VODSCRIBE_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:9/x"}
    media_only = cli(tmp_path, "worker", "-Q", "media", env=nodb)
    assert media_only.returncode != 0 and "models pull" not in media_only.stderr
    assert "127.0.0.1" in media_only.stderr and "9" in media_only.stderr
    unknown = cli(tmp_path, "serve", env={setting: "no-such-model"})
    assert unknown.returncode != 0 and "Unknown model 'no-such-model'" in unknown.stderr


@pytest.mark.slow
def test_serve_pulls_on_start_when_opted_in_and_uses_the_named_model(hub: Hub, tmp_path: Path) -> None:
    svc = start_service(
        tmp_path,
        {
            "VODSCRIBE_ASR_MODEL": "base",
            "VODSCRIBE_MODELS_PULL_ON_START": "true",
            "VODSCRIBE_HF_ENDPOINT": hub.url,
        },
    )
    try:
        assert ModelStore(tmp_path / "models").problems("base") == []
        log = (tmp_path / "serve.log").read_text()
        assert "VODSCRIBE_MODELS_PULL_ON_START: pulling base" in log
    finally:
        stop_service(svc)


# --- translation checkpoints, converted at pull time ----------------------------------------------


def test_a_translation_checkpoint_is_converted_at_pull_and_served_by_name(tmp_path: Path) -> None:
    """A tiny M2M100 made with transformers, published as facebook/m2m100_418M: the pull converts
    it with CTranslate2's converter, locks both the checkpoint and the converted files, and the
    nmt backend then offers M2M100's languages under the name (what /ai/info answers from)."""
    from tests.checkpoints import tiny_m2m100
    from vodscribe.languages import resolve
    from vodscribe.services.translation_backends import translators_for

    with running_hub() as hub:
        hub.publish("facebook/m2m100_418M", tiny_m2m100(tmp_path / "make"))
        done = cli(
            tmp_path, "models", "pull", "m2m100-418m", "--quiet", env={"VODSCRIBE_HF_ENDPOINT": hub.url}
        )
    assert done.returncode == 0, done.stderr
    assert "converting m2m100-418m to CTranslate2" in done.stderr
    store = ModelStore(tmp_path / "models")
    entry = store.entry("m2m100-418m")
    assert entry is not None and entry.converter is not None and entry.converter.startswith("ctranslate2 ")
    assert {"model.bin", "shared_vocabulary.json", "sentencepiece.bpe.model"} <= set(entry.files)
    assert {"model.safetensors", "vocab.json", "sentencepiece.bpe.model"} <= set(entry.source)
    assert store.problems("m2m100-418m") == []

    settings = Settings(data_dir=tmp_path, nmt_models="m2m100-418m", translation_backends="nmt,whisper")
    nmt = translators_for(settings)[0]
    assert nmt.name == "nmt:m2m100-418m"
    targets = nmt.engine.targets()  # type: ignore[attr-defined]
    assert len(targets) >= 80 and {"ger", "fre", "jpn", "swa"} <= targets
    [translated] = nmt.engine.translate(["The quick brown fox."], resolve("eng"), resolve("ger"))  # type: ignore[attr-defined]
    assert translated.strip()

    listed = cli(tmp_path, "models", "list", env={"VODSCRIBE_NMT_MODELS": "m2m100-418m"}).stdout
    row = next(line for line in listed.splitlines() if line.startswith("m2m100-418m "))
    assert "yes" in row and row.rstrip().endswith("nmt")


def test_converting_without_the_convert_extra_says_what_to_install(tmp_path: Path) -> None:
    """Without torch (the ``convert`` extra), a checkpoint pull stops with the command that adds it."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from pathlib import Path\n"
        "from vodscribe.models.convert import convert_checkpoint\n"
        f"convert_checkpoint(Path({str(tmp_path)!r}), Path({str(tmp_path / 'out')!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "needs torch, which is not installed; add it with: pip install 'vodscribe[convert]'" in done.stderr


# --- chat models (GGUF) ----------------------------------------------------------------------------


def test_a_split_gguf_chat_model_is_pulled_and_loaded_by_name(tmp_path: Path) -> None:
    """Qwen2.5 7B's repository layout (two split files among other quantisations): the pull takes
    only the Q4_K_M split files, and the llm backend loads them by name through llama.cpp."""
    from tests.gguf_models import tiny_gguf
    from vodscribe.engines.text_translator import TranslationError
    from vodscribe.languages import resolve
    from vodscribe.services.translation_backends import translators_for

    files = tiny_gguf(tmp_path / "make", "qwen2.5-7b-instruct-q4_k_m", split=True)
    files |= tiny_gguf(tmp_path / "make", "qwen2.5-7b-instruct-q8_0")  # another quantisation
    with running_hub() as hub:
        hub.publish("Qwen/Qwen2.5-7B-Instruct-GGUF", files | {"README.md": b"# Qwen2.5-7B-Instruct-GGUF\n"})
        done = cli(tmp_path, "models", "pull", "qwen2.5-7b-instruct", env={"VODSCRIBE_HF_ENDPOINT": hub.url})
    assert done.returncode == 0, done.stderr
    store = ModelStore(tmp_path / "models")
    entry = store.entry("qwen2.5-7b-instruct")
    assert entry is not None and sorted(entry.files) == [
        "qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf",
        "qwen2.5-7b-instruct-q4_k_m-00002-of-00002.gguf",
    ]

    settings = Settings(data_dir=tmp_path, llm_model="qwen2.5-7b-instruct", translation_backends="llm")
    [llm] = translators_for(settings)
    assert llm.name == "llm:qwen2.5-7b-instruct"
    assert llm.targets() == catalogue.QWEN_LANGUAGES
    [out] = llm.engine.translate(["Hello."], resolve("eng"), resolve("ger"))  # type: ignore[attr-defined]
    assert isinstance(out, str)  # a random model's words, but llama.cpp loaded both split files

    second = store.folder("qwen2.5-7b-instruct") / "qwen2.5-7b-instruct-q4_k_m-00002-of-00002.gguf"
    data = bytearray(second.read_bytes())
    data[-1] ^= 1
    second.write_bytes(bytes(data))
    fresh = Settings(data_dir=tmp_path, llm_model="qwen2.5-7b-instruct", translation_backends="llm,whisper")
    with pytest.raises(TranslationError, match=r"00002-of-00002\.gguf has sha256"):
        translators_for(fresh)[0].engine.translate(["Hello."], resolve("eng"), resolve("ger"))  # type: ignore[attr-defined]


# --- a service on named models, end to end ----------------------------------------------------------


@pytest.mark.slow  # a vodscribe serve whose worker loads Whisper
def test_a_service_on_named_models_answers_and_translates(
    whisper_files: dict[str, bytes], tmp_path: Path, media_server: MediaServer
) -> None:
    """Whisper base and M2M100 pulled by name, the service started on the names: /ai/info follows
    the installed translation model (Swahili: M2M100 has it, Whisper and Qwen do not), and a task
    is recognised and translated by the named models."""
    from tests.checkpoints import tiny_m2m100

    with running_hub() as hub:
        hub.publish(WHISPER_REPO, whisper_files)
        hub.publish("facebook/m2m100_418M", tiny_m2m100(tmp_path / "make"))
        endpoint = {"VODSCRIBE_HF_ENDPOINT": hub.url}
        done = cli(tmp_path, "models", "pull", "base", "m2m100-418m", "--quiet", env=endpoint)
    assert done.returncode == 0, done.stderr
    svc = start_service(
        tmp_path / "svc",
        {
            "VODSCRIBE_MODELS_DIR": str(tmp_path / "models"),
            "VODSCRIBE_ASR_MODEL": "base",
            "VODSCRIBE_NMT_MODELS": "m2m100-418m",
            "VODSCRIBE_TRANSLATION_BACKENDS": "nmt,whisper",
            "HF_HUB_OFFLINE": "1",
        },
    )
    try:
        with httpx.Client(base_url=svc.base_url, headers=svc.headers(), timeout=30) as api:
            info = api.get(
                "/streaming/ai/info",
                params={"type": "language_support", "audio_language": "eng", "subtitles_language": "swa"},
            ).json()
            assert info["supported"] is True
            listing = api.get("/streaming/ai/info", params={"type": "translation_languages"}).json()
            assert "nmt:m2m100-418m" in json.dumps(listing)
            r = api.post(
                "/streaming/ai/tasks",
                json={
                    "url": media_server.url("ldc93s1.wav"),
                    "audio_language": "eng",
                    "subtitles_language": "ger",
                },
            )
            task = wait_for(api, r.json()["task_id"])
        assert task["status"] == "SUCCESS", task
        assert task["result"]["languages"] == ["eng", "ger"]
        assert task["result"]["vttContent"].startswith("WEBVTT")
        log = (tmp_path / "svc" / "serve.log").read_text()
        assert "Translation backends: nmt:m2m100-418m, whisper" in log
    finally:
        stop_service(svc)


def test_what_fits_where() -> None:
    from vodscribe.cli.model_listing import Gpu, Hardware, hardware

    cpu_only = Hardware(ram_bytes=24 * 10**9, gpus=())
    assert cpu_only.fits(find("large-v3").memory_gb) == "CPU"
    assert cpu_only.fits(find("qwen2.5-14b-instruct").memory_gb) == "CPU"
    assert Hardware(ram_bytes=8 * 10**9, gpus=()).fits(find("large-v3").memory_gb) == "no"
    h200 = Hardware(ram_bytes=128 * 10**9, gpus=(Gpu("NVIDIA H200", 141 * 10**9),))
    assert h200.fits(find("nllb-200-3.3b").memory_gb) == "GPU"
    small_gpu = Hardware(ram_bytes=32 * 10**9, gpus=(Gpu("GTX 1650", 4 * 10**9),))
    assert (
        small_gpu.fits(find("small").memory_gb) == "GPU"
        and small_gpu.fits(find("large-v3").memory_gb) == "CPU"
    )
    here = hardware()
    assert here.ram_bytes > 10**9 and "GB RAM" in here.describe()


def test_transcribe_names_the_pull_command(tmp_path: Path) -> None:
    done = cli(
        tmp_path, "transcribe", str(DATA / "ldc93s1.wav"), "--quiet", env={"VODSCRIBE_ASR_MODEL": "small"}
    )
    assert done.returncode != 0 and "run: vodscribe models pull small" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_file_damaged_in_transfer_is_fetched_anew(hub: Hub, tmp_path: Path) -> None:
    """Each file is checked against the hash the hub publishes for it (SHA-256 of model.bin, the
    git blob SHA-1 of config.json): a damaged one is dropped and the next run fetches only it."""

    def fetched() -> list[str]:
        return [
            r.path.rsplit("/", 1)[-1] for r in hub.requests if r.method == "GET" and "/resolve/" in r.path
        ]

    for name in ("model.bin", "config.json"):
        store = ModelStore(tmp_path / name)
        hub.damage(name)
        with pytest.raises(PullError, match=rf"{name} of Systran/faster-whisper-base@\w+ arrived damaged"):
            pull(find("base"), store, endpoint=hub.url, progress=False)
        assert store.entry("base") is None
        hub.requests.clear()
        pull(find("base"), store, endpoint=hub.url, progress=False)
        assert fetched() == [name]
        assert store.problems("base") == []


def test_two_pulls_of_one_name_fetch_it_once(hub: Hub, tmp_path: Path) -> None:
    """Two processes pulling the same name (workers pulling on start): the second waits for the
    first, then finds the model pulled and intact."""
    env = {"VODSCRIBE_HF_ENDPOINT": hub.url}
    full = {**os.environ, "VODSCRIBE_DATA_DIR": str(tmp_path), "HF_HUB_DISABLE_TELEMETRY": "1", **env}
    command = [sys.executable, "-m", "vodscribe.cli", "models", "pull", "base", "--quiet"]
    procs = [subprocess.Popen(command, env=full, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sum("already pulled" in out for out in outputs) == 1
    assert len(hub.gets("/model.bin")) == 1
    assert ModelStore(tmp_path / "models").problems("base") == []


def test_a_pull_the_disk_cannot_hold_is_refused_before_fetching(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=50_000_000))
    with pytest.raises(PullError, match=r"base needs 0\.2 GB more on .*, which has 0\.1 GB free"):
        pull(find("base"), ModelStore(tmp_path / "models"), endpoint=hub.url, progress=False)
    assert hub.gets("/model.bin") == []


# --- a hub is untrusted input (hardening 2) ----------------------------------------------------------

TINY_REPO = "someone/tiny"
TINY = catalogue.CatalogueModel(
    name="tiny-test", kind="asr", repo=TINY_REPO, files=("config.json", "*.bin"), licence="MIT",
    commercial=True, languages="1", size_gb=0.01, memory_gb=0.1, description="a test model",
)  # fmt: skip
TINY_FILES = {"config.json": b'{"a": 1}', "model.bin": os.urandom(2 * 1024 * 1024)}


@pytest.mark.parametrize(
    "name", ["x/../../../../escaped.bin", "{tmp}/escaped.bin", "..\\escaped.bin", "a//b.bin"]
)
def test_a_file_name_from_the_hub_never_leaves_the_models_folder(hub: Hub, tmp_path: Path, name: str) -> None:
    name = name.replace("{tmp}", str(tmp_path))  # an absolute path, in this test's own folder
    hub.publish(TINY_REPO, {**TINY_FILES, name: b"owned"})
    store = ModelStore(tmp_path / "data" / "models")
    with pytest.raises(PullError, match="not a plain relative path"):
        pull(TINY, store, endpoint=hub.url, progress=False)
    assert [p for p in tmp_path.rglob("*") if p.is_file() and p.read_bytes() == b"owned"] == []
    assert store.entry(TINY.name) is None


def test_a_pattern_matches_within_one_folder_level(hub: Hub, tmp_path: Path) -> None:
    """``*.bin`` names top-level files only: a nested one is not fetched."""
    hub.publish(TINY_REPO, {**TINY_FILES, "nested/extra.bin": b"not asked for"})
    store = ModelStore(tmp_path / "models")
    entry = pull(TINY, store, endpoint=hub.url, progress=False)
    assert sorted(entry.files) == ["config.json", "model.bin"]


def test_the_hub_token_goes_to_the_hub_only(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large file is redirected to another origin (the hub's CDN): the token is not sent there."""
    monkeypatch.setenv("HF_TOKEN", "hf_secrettokenvalue")
    hub.cdn = True
    hub.publish(TINY_REPO, TINY_FILES)
    store = ModelStore(tmp_path / "models")
    pull(TINY, store, endpoint=hub.url, progress=False)
    assert store.problems(TINY.name) == []
    to_hub = [r for r in hub.requests if r.host.startswith("127.0.0.1")]
    to_cdn = [r for r in hub.requests if r.host.startswith("localhost")]
    assert to_cdn and all(r.authorization is None for r in to_cdn), to_cdn
    assert to_hub and all(r.authorization == "Bearer hf_secrettokenvalue" for r in to_hub)


def test_a_server_sending_more_than_it_announced_fails_the_pull(hub: Hub, tmp_path: Path) -> None:
    hub.publish(TINY_REPO, TINY_FILES)
    hub.grow["model.bin"] = 1000
    store = ModelStore(tmp_path / "models")
    with pytest.raises(PullError, match="more than the 2097152 bytes"):
        pull(TINY, store, endpoint=hub.url, progress=False)
    assert len(hub.gets("/model.bin")) == 1
    assert store.entry(TINY.name) is None


def test_a_server_ignoring_range_and_cutting_fails_after_a_bounded_number_of_requests(
    hub: Hub, tmp_path: Path
) -> None:
    """It starts over on every request and never gets further: the pull stops with the reason
    instead of looping for ever (and ``serve`` with pulling on start would hang)."""
    hub.publish(TINY_REPO, TINY_FILES)
    hub.ignore_range.add("model.bin")
    hub.cut("model.bin", *[1_000_000] * 50)
    store = ModelStore(tmp_path / "models")
    with pytest.raises(PullError, match="ignored Range"):
        pull(TINY, store, endpoint=hub.url, progress=False)
    assert len(hub.gets("/model.bin")) == 7  # one that brought bytes, six in a row that did not
