"""Vocabularies: near misses of a team's terms put right (never inside other words, never where the
term was not said), glossaries for translation, saved vocabularies per client, and recognition with
the terms as Whisper's hotwords on real speech."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tests.conftest import MediaServer, in_process_api, wait_for
from vodscribe import languages
from vodscribe.config import Settings
from vodscribe.engines.results import Cue, Word
from vodscribe.engines.whisper import WhisperEngine, engine_for
from vodscribe.services.translation_backends import translators_for
from vodscribe.speech.cues import concatenated_text
from vodscribe.speech.text_subtitles import translate_cues
from vodscribe.speech.transcription import transcribe_file
from vodscribe.speech.vocabulary import Vocabulary, fix_words, glossary, repair

DATA = Path(__file__).parent / "data"
TERMS = Vocabulary.of(
    ["ComfyUI", "Gcore", "Kubernetes", "PostgreSQL", {"term": "checkout", "translations": {"ger": "Kasse"}}]
)


def _fixed(text: str, vocabulary: Vocabulary = TERMS) -> str:
    words = [Word(i, i + 0.4, w) for i, w in enumerate(re.findall(r"\s*\S+", text))]
    return "".join(w.text for w in fix_words(words, vocabulary))


@pytest.mark.parametrize(
    ("heard", "written"),
    [
        (" I use Comfy UI every day.", " I use ComfyUI every day."),
        (" open comfy-ui, then comfyui.", " open ComfyUI, then ComfyUI."),
        (" Deploy on Cubernetties with G core.", " Deploy on Kubernetes with Gcore."),
        (" a Postgre SQL database", " a PostgreSQL database"),
        (" Checkout is where you pay, chekout.", " Checkout is where you pay, checkout."),
    ],
)
def test_near_misses_are_written_as_the_term(heard: str, written: str) -> None:
    assert _fixed(heard) == written


@pytest.mark.parametrize(
    "heard",
    [
        " The core of the score is here.",  # "core" does not sound like "Gcore"
        " a comfy chair and a cubic metre",  # parts of words, other words
        " Check out the new store.",  # a common word heard apart stays apart
        " postgres and SQL",  # too far from the term
    ],
)
def test_other_words_are_left_alone(heard: str) -> None:
    assert _fixed(heard) == heard


def test_no_term_appears_in_the_test_datas_references() -> None:
    """Over the reference transcripts of the test data here (tests/data/README.md: English, French,
    German, Spanish, Chinese, the English/German licence text), the post-pass with these terms
    changes nothing: none of them is said there."""
    lines = (DATA / "README.md").read_text().splitlines()
    references = [json.loads(line)["reference"] for line in lines if line.startswith('{"file"')]
    assert len(references) >= 7
    for reference in references:
        text = " " + " ".join(reference.split())
        assert _fixed(text) == text, reference


def test_glossary_and_repair_for_translation() -> None:
    assert glossary(TERMS, "Go to the checkout at Gcore.", "ger") == {"checkout": "Kasse", "Gcore": "Gcore"}
    assert glossary(TERMS, "Go to the checkout at Gcore.", "fre") == {
        "checkout": "checkout",
        "Gcore": "Gcore",
    }
    assert glossary(TERMS, "Nothing of them here.", "ger") == {}
    wanted = {"checkout": "Kasse", "Gcore": "Gcore"}
    assert repair("Gehen Sie zur Kasse bei GCore.", wanted) == "Gehen Sie zur Kasse bei Gcore."
    # Case-folded letters count as the same ("ß" is "ss"), other spacing and punctuation too.
    assert repair("Gehen Sie zur Kaße bei G-Core.", wanted) == "Gehen Sie zur Kasse bei Gcore."


def test_saved_vocabularies_are_the_clients_own(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with in_process_api(settings, "a") as api, in_process_api(settings, "b") as other:
        made = api.post(
            "/streaming/ai/vocabularies",
            json={
                "name": "product",
                "terms": ["Gcore", {"term": "checkout", "translations": {"de": "Kasse"}}],
            },
        )
        assert made.status_code == 201, made.text
        vocabulary = made.json()
        assert vocabulary["terms"] == [
            {"term": "Gcore", "translations": {}},
            {"term": "checkout", "translations": {"ger": "Kasse"}},  # stored with the B code
        ]
        vid = vocabulary["id"]
        assert api.get("/streaming/ai/vocabularies").json()["count"] == 1
        assert other.get("/streaming/ai/vocabularies").json()["count"] == 0
        for method in ("get", "patch", "delete"):
            kwargs = {"json": {"name": "x"}} if method == "patch" else {}
            assert getattr(other, method)(f"/streaming/ai/vocabularies/{vid}", **kwargs).status_code == 404
        bad = api.post(
            "/streaming/ai/vocabularies",
            json={"name": "x", "terms": [{"term": "a", "translations": {"klingon": "b"}}]},
        )
        assert bad.status_code == 400 and "klingon" in bad.json()["error"]
        # A task takes a snapshot: the saved terms, then its own.
        vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nPay at the checkout.\n"
        asked = {"vtt": vtt, "audio_language": "eng", "subtitles_language": "ger"}
        task = api.post(
            "/streaming/ai/tasks", json={**asked, "vocabulary_id": vid, "vocabulary": ["ComfyUI"]}
        )
        assert task.status_code == 201, task.text
        task_id = task.json()["task_id"]
        foreign = other.post("/streaming/ai/tasks", json={**asked, "vocabulary_id": vid})
        assert foreign.status_code == 400 and "not found" in foreign.json()["error"]
        patched = api.patch(f"/streaming/ai/vocabularies/{vid}", json={"terms": ["Gcore"]})
        assert patched.json()["terms"] == [{"term": "Gcore", "translations": {}}]
        snapshot = api.get(f"/streaming/ai/tasks/{task_id}").json()["task_data"]["vocabulary"]
        assert [t["term"] for t in snapshot] == ["Gcore", "checkout", "ComfyUI"]
        assert api.delete(f"/streaming/ai/vocabularies/{vid}").status_code == 204
        assert api.get(f"/streaming/ai/vocabularies/{vid}").status_code == 404


# --- with real speech -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> WhisperEngine:
    return engine_for(Settings(data_dir=tmp_path_factory.mktemp("vocabulary")))


def _heard(engine: WhisperEngine, name: str, vocabulary: Vocabulary | None) -> str:
    return concatenated_text(transcribe_file(DATA / name, engine, vocabulary=vocabulary).cues)


@pytest.mark.slow
def test_a_term_is_recognised_as_written_with_the_vocabulary(engine: WhisperEngine) -> None:
    """faster-whisper's own test clip says "ComfyUI" twice; the bundled base model writes it
    otherwise ("confu i"), and with the vocabulary as it is written."""
    plain = _heard(engine, "hotwords.mp3", None)
    assert plain.count("ComfyUI") == 0, plain
    assert _heard(engine, "hotwords.mp3", Vocabulary.of(["ComfyUI"])).count("ComfyUI") == 2


@pytest.mark.slow
def test_the_batched_path_takes_the_vocabulary_too(tmp_path: Path) -> None:
    """The batched decoding a GPU uses (here on the CPU) hears the segment again with hotwords too."""
    settings = Settings(data_dir=tmp_path)
    batched = engine_for(settings, replace(settings.asr, batch_size=4))
    assert batched.batch_size == 4
    assert _heard(batched, "hotwords.mp3", Vocabulary.of(["ComfyUI"])).count("ComfyUI") == 2


@pytest.mark.slow
def test_no_term_is_heard_where_it_was_not_said(engine: WhisperEngine) -> None:
    many = Vocabulary.of([*(t.text for t in TERMS.terms), "Grafana", "vodscribe", "FastAPI", "WebVTT"])
    for name in ("jfk_librivox.mp4", "ldc93s1.wav", "cheetah_test_de.wav"):
        text = _heard(engine, name, many)
        assert not [t.text for t in many.terms if t.text.casefold() in text.casefold()], (name, text)


@pytest.mark.slow  # the LLM backend translates
def test_translation_writes_the_terms_renderings(tmp_path: Path) -> None:
    from tests.conftest import llm_model_file

    settings = Settings(data_dir=tmp_path, llm_model=str(llm_model_file()))
    cues = [Cue(1.0, 3.0, "Pay at the checkout."), Cue(3.5, 6.0, "Gcore keeps the receipt.")]
    done = translate_cues(
        cues, languages.ENGLISH, languages.resolve("ger"), translators_for(settings), vocabulary=TERMS
    )
    text = " ".join(c.text for c in done.cues)
    assert "Kasse" in text and "Gcore" in text, text


def test_a_chat_request_carries_the_glossary_after_the_shared_system_prompt() -> None:
    from vodscribe.engines.chat_translation import batch_request, single_request

    german = languages.resolve("ger")
    plain = batch_request(["Pay at the checkout.", "Thanks."], languages.ENGLISH, german)
    asked = batch_request(
        ["Pay at the checkout.", "Thanks."],
        languages.ENGLISH,
        german,
        glossary={"checkout": "Kasse", "Gcore": "Gcore"},
    )
    assert asked.system == plain.system  # the prefix every request of the pair shares stays
    assert "- checkout -> Kasse" in asked.user and "- Gcore (keep as it is)" in asked.user
    assert asked.user.endswith(plain.user)
    one = single_request("Pay at the checkout.", languages.ENGLISH, german, {"checkout": "Kasse"})
    assert one.user.endswith("Translate:\nPay at the checkout.") and "Kasse" in one.user


@pytest.mark.slow  # a vodscribe serve whose worker loads Whisper
def test_an_ai_task_with_a_vocabulary_through_the_api(api: httpx.Client, media_server: MediaServer) -> None:
    url = media_server.url("hotwords.mp3")
    made = api.post("/streaming/ai/tasks", json={"url": url, "vocabulary": ["ComfyUI"]})
    assert made.status_code == 201, made.text
    task = wait_for(api, made.json()["task_id"])
    assert task["status"] == "SUCCESS", task
    assert task["result"]["concatenated_text"].count("ComfyUI") == 2
    assert task["task_data"]["vocabulary"] == [{"term": "ComfyUI", "translations": {}}]
