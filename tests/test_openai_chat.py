"""The OpenAI-compatible translation backend, against real servers on 127.0.0.1: llama-cpp-python's
own OpenAI-compatible server with the bundled GGUF, tiny stub servers for failures, and a real
``vodscribe serve`` using it for AI tasks."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import webvtt

from tests.conftest import MediaServer, free_port, llm_model_file, start_service, stop_service, wait_for
from tests.processes import serving
from vodscribe.config import Settings
from vodscribe.engines.llm import QWEN_LANGUAGES
from vodscribe.engines.openai_chat import OpenAIChatTranslator
from vodscribe.engines.text_translator import TextTranslator, TranslationError, TranslationServiceError
from vodscribe.errors import MediaError
from vodscribe.languages import resolve
from vodscribe.services.translation_backends import TranslationConfigError, can_translate, translators_for

ENG, GER, FRE, SPA = (resolve(c) for c in ("eng", "ger", "fre", "spa"))
API_KEY = "sk-test-4f1c9e0d7b"


# --- a stub OpenAI-compatible server ---------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def completion(text: str) -> Reply:
    return Reply(body={"object": "chat.completion", "choices": [{"index": 0, "message": {"content": text}}]})


@dataclass
class Stub:
    """Answers POSTs from ``replies`` in order (the last one again once they run out)."""

    base_url: str
    replies: list[Reply]
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub("", [completion("Hallo.")])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            state.requests.append((self.path, dict(self.headers), body))
            reply = state.replies.pop(0) if len(state.replies) > 1 else state.replies[0]
            time.sleep(reply.delay_s)
            data = reply.body
            if isinstance(data, dict):
                data = json.dumps(data)
            raw = data.encode() if isinstance(data, str) else data
            self.send_response(reply.status)
            for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that timed out
                self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


def translator(base_url: str, **kwargs: Any) -> OpenAIChatTranslator:
    return OpenAIChatTranslator(base_url, "test-model", api_key=API_KEY, **kwargs)


# --- the engine against stubs ----------------------------------------------------------------------


def test_languages_are_offered_without_any_request(stub: Stub) -> None:
    t = translator(stub.base_url, languages=frozenset({"eng", "ger"}))
    assert isinstance(t, TextTranslator) and t.name == "openai:test-model"
    assert t.supports(ENG, GER) and t.supports(GER, ENG)
    assert not t.supports(ENG, FRE) and not t.supports(ENG, ENG)
    assert t.targets() == {"eng", "ger"}
    assert translator(stub.base_url).targets() == QWEN_LANGUAGES  # the bundled LLM's by default
    with pytest.raises(TranslationError, match="English to French"):
        t.translate(["Hello."], ENG, FRE)
    assert stub.requests == []
    assert API_KEY not in repr(t)


def test_a_request_is_an_openai_chat_completion(stub: Stub) -> None:
    stub.replies = [completion("1. Eins.\n2. Zwei."), completion("Drei.")]
    t = translator(stub.base_url + "/")  # a trailing slash is fine
    assert t.translate(["One.", "", "Two."], ENG, GER) == ["Eins.", "", "Zwei."]
    assert t.translate(["Three."], ENG, GER) == ["Drei."]
    (path, headers, body), _ = stub.requests
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert body["model"] == "test-model" and body["temperature"] == 0 and body["stream"] is False
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == "1. One.\n2. Two."
    assert "from English into German" in body["messages"][0]["content"]
    assert isinstance(body["max_tokens"], int) and body["max_tokens"] > 0
    stub.replies = [completion("<think>\n1. Not this.\n</think>\n\n1. Vier.\n2. Fünf.")]
    assert t.translate(["Four.", "Five."], ENG, GER) == ["Vier.", "Fünf."]  # a reasoning model's thoughts
    no_key = OpenAIChatTranslator(stub.base_url, "m")
    assert no_key.translate(["Four.", "Five."], ENG, GER) == ["Vier.", "Fünf."]
    assert "Authorization" not in stub.requests[-1][1]


def test_server_errors_are_retried_with_backoff(stub: Stub, caplog: pytest.LogCaptureFixture) -> None:
    busy = Reply(500, {"error": {"message": f"busy (key {API_KEY})"}})
    stub.replies = [busy, Reply(503, "overloaded"), completion("Hallo.")]
    t = translator(stub.base_url, backoff_s=0.2)
    start = time.monotonic()
    with caplog.at_level("WARNING"):
        assert t.translate(["Hello."], ENG, GER) == ["Hallo."]
    assert time.monotonic() - start >= 0.2 + 0.4  # waited 0.2 s, then 0.4 s
    assert len(stub.requests) == 3
    assert (
        f"Translation server {stub.base_url} answered HTTP 500: busy (key ***); retrying in 0.2 s"
        in caplog.text
    )
    assert "answered HTTP 503: overloaded; retrying in 0.4 s" in caplog.text and API_KEY not in caplog.text


def test_too_many_requests_waits_as_asked(stub: Stub) -> None:
    stub.replies = [
        Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}),
        completion("Hallo."),
    ]
    start = time.monotonic()
    assert translator(stub.base_url, backoff_s=0.01).translate(["Hello."], ENG, GER) == ["Hallo."]
    assert time.monotonic() - start >= 1.0 and len(stub.requests) == 2


def test_a_server_that_keeps_failing_gives_up_naming_itself(stub: Stub) -> None:
    stub.replies = [Reply(502, "<html>Bad gateway</html>", {"Content-Type": "text/html"})]
    with pytest.raises(TranslationServiceError) as caught:
        translator(stub.base_url, attempts=3, backoff_s=0.01).translate(["Hello."], ENG, GER)
    assert str(caught.value) == (
        f"Translation server {stub.base_url} answered HTTP 502: <html>Bad gateway</html>; "
        "gave up after 3 attempts."
    )
    assert len(stub.requests) == 3


def test_a_client_error_is_not_retried_and_never_shows_the_key(stub: Stub) -> None:
    stub.replies = [Reply(401, {"error": {"message": f"Incorrect API key provided: {API_KEY}"}})]
    with pytest.raises(TranslationServiceError) as caught:
        translator(stub.base_url).translate(["Hello."], ENG, GER)
    assert caught.value.message == (
        f"Translation server {stub.base_url} answered HTTP 401: Incorrect API key provided: ***."
    )
    assert len(stub.requests) == 1


def test_a_server_that_is_down_fails_after_the_retries() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    t = translator(base_url)
    start = time.monotonic()
    with pytest.raises(TranslationServiceError) as caught:
        t.translate(["Hello."], ENG, GER)
    elapsed = time.monotonic() - start
    error = caught.value
    assert isinstance(error, MediaError) and isinstance(error, TranslationError)  # a task FAILURE
    assert error.message.startswith(f"Translation server {base_url} could not be reached (")
    assert error.message.endswith("; gave up after 4 attempts.")
    assert API_KEY not in error.message
    assert 0.5 + 1 + 2 <= elapsed < 30  # backed off 0.5, 1 and 2 s between the four attempts


def test_a_slow_server_times_out(stub: Stub) -> None:
    stub.replies = [Reply(delay_s=1.5, body=completion("Hallo.").body)]
    with pytest.raises(
        TranslationServiceError, match=r"did not answer within 0.5 s; gave up after 2 attempts"
    ):
        translator(stub.base_url, timeout_s=0.5, attempts=2, backoff_s=0.01).translate(["Hi."], ENG, GER)


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (
            Reply(200, "<html><body>Welcome to nginx!</body></html>"),
            "answered something that is not JSON: <html>",
        ),
        (Reply(200, {"object": "list", "data": []}), "answered JSON without choices"),
        (Reply(200, {"choices": []}), "answered JSON without choices"),
        (Reply(200, {"choices": [{"message": {"content": "  "}}]}), "answered an empty chat message"),
        (Reply(200, {"choices": [{"text": "legacy completion"}]}), "answered an empty chat message"),
        (Reply(200, "[1, 2]"), "answered JSON without choices"),
        (Reply(200, completion("<think>Nothing to say.</think>\n").body), "answered an empty chat message"),
        (Reply(302, "", {"Location": "http://127.0.0.1:1/v1/chat/completions"}), "answered HTTP 302."),
    ],
)
def test_nonsense_answers_are_a_clear_error(stub: Stub, reply: Reply, problem: str) -> None:
    stub.replies = [reply]
    with pytest.raises(TranslationServiceError) as caught:
        translator(stub.base_url).translate(["Hello."], ENG, GER)
    assert caught.value.message.startswith(f"Translation server {stub.base_url} {problem}")
    assert len(stub.requests) == 1  # not retried: asking again would get the same


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://127.0.0.1/v1", "expected http"),
        ("127.0.0.1:8080/v1", "expected http"),
        ("http://user:hunter2@127.0.0.1/v1", "no credentials"),
        ("http://127.0.0.1:99999/v1", "(?i)port"),
    ],
)
def test_a_malformed_base_url_is_refused(url: str, problem: str) -> None:
    with pytest.raises(TranslationError, match=problem) as caught:
        OpenAIChatTranslator(url, "m")
    assert "hunter2" not in str(caught.value)


# --- configuration ----------------------------------------------------------------------------------


def test_the_backend_is_configured_by_settings(
    tmp_path: Path, stub: Stub, caplog: pytest.LogCaptureFixture
) -> None:
    off = Settings(data_dir=tmp_path, translation_backends="openai,whisper", llm_model="")
    with caplog.at_level("INFO"):
        assert [b.name for b in translators_for(off)] == ["whisper"]
    assert "VODSCRIBE_OPENAI_BASE_URL is not set" in caplog.text
    on = Settings(
        data_dir=tmp_path,
        translation_backends="openai, whisper",
        openai_base_url=stub.base_url,
        openai_model="qwen2.5",
        openai_api_key=API_KEY,
        openai_languages="eng, de, French",
    )
    backends = translators_for(on)
    assert [b.name for b in backends] == ["openai:qwen2.5", "whisper"]
    assert backends[0].targets() == {"eng", "ger", "fre"}
    assert can_translate(on, ENG, GER) and can_translate(on, FRE, GER) and can_translate(on, SPA, ENG)
    assert not can_translate(on, ENG, SPA)
    default_languages = on.model_copy(update={"openai_languages": ""})
    assert translators_for(default_languages)[0].targets() == QWEN_LANGUAGES
    assert stub.requests == []  # building the backends asks the server nothing
    assert API_KEY not in repr(on) and API_KEY not in caplog.text
    assert "openai" not in Settings(data_dir=tmp_path).translation_backends  # not on by default
    with pytest.raises(TranslationConfigError, match="unknown language 'klingon'"):
        translators_for(on.model_copy(update={"openai_languages": "eng,klingon"}))
    with pytest.raises(TranslationConfigError, match="at least two"):
        translators_for(on.model_copy(update={"openai_languages": "eng"}))
    with pytest.raises(TranslationConfigError, match="VODSCRIBE_OPENAI_MODEL"):
        translators_for(on.model_copy(update={"openai_model": " "}))
    with pytest.raises(TranslationError, match="timeout must be positive"):
        translators_for(on.model_copy(update={"openai_timeout_s": 0.0}))
    with pytest.raises(TranslationError, match="Bad OpenAI-compatible base URL"):
        translators_for(on.model_copy(update={"openai_base_url": "localhost:8080"}))


def test_a_malformed_setting_stops_the_service_from_starting(tmp_path: Path) -> None:
    env = {
        "VODSCRIBE_DATA_DIR": str(tmp_path),
        "VODSCRIBE_TRANSLATION_BACKENDS": "openai,whisper",
        "VODSCRIBE_OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
        "VODSCRIBE_OPENAI_MODEL": "m",
        "VODSCRIBE_OPENAI_API_KEY": API_KEY,
        "VODSCRIBE_OPENAI_LANGUAGES": "eng,klingon",
        "PATH": "/usr/bin:/bin",
    }
    for command in ("serve", "worker"):
        out = subprocess.run(
            [sys.executable, "-m", "vodscribe.cli", command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode != 0
        assert "Translation setup: VODSCRIBE_OPENAI_LANGUAGES: unknown language 'klingon'" in out.stderr
        assert API_KEY not in out.stderr + out.stdout
    assert not (tmp_path / "vodscribe.db").exists()  # refused before touching anything


# --- against llama-cpp-python's OpenAI-compatible server --------------------------------------------


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` with the bundled GGUF on 127.0.0.1, behind an API key."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(llm_model_file()),
        "--host", "127.0.0.1", "--port", str(port), "--api_key", API_KEY,
        "--n_threads", str(os.cpu_count() or 2), "--n_ctx", "4096",
    ]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"

    def ready() -> bool:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        return httpx.get(f"{base_url}/models", headers=headers, timeout=2).status_code == 200

    with serving(command, log_path, ready, timeout_s=300, what="llama_cpp.server answering /v1/models"):
        yield base_url


@pytest.mark.slow  # llama_cpp.server loads the bundled GGUF
def test_translates_through_a_real_server(llama_server: str) -> None:
    t = translator(llama_server)
    sentences = [
        "Ask not what your country can do for you.",
        "",
        "Ask what you can do for your country.",
        "The weather is nice today.",
    ]
    out = t.translate(sentences, ENG, GER)
    assert len(out) == 4 and out[1] == ""
    assert all(text and text != src for text, src in zip(out, sentences, strict=True) if src)
    assert "Land" in out[0] and "Land" in out[2], out
    # Again, now from llama.cpp's prompt cache: the words may differ in the last digits (batching
    # and float sums vary run to run and between CPUs), what must hold still holds.
    again = t.translate(sentences, ENG, GER)
    assert len(again) == 4 and again[1] == "" and "Land" in again[0] and "Land" in again[2], again
    with pytest.raises(TranslationServiceError, match="answered HTTP 401"):
        OpenAIChatTranslator(llama_server, "m", api_key="wrong").translate(["Hello."], ENG, GER)


@pytest.mark.slow  # llama_cpp.server loads the bundled GGUF
def test_batches_keep_one_translation_per_sentence(llama_server: str) -> None:
    sentences = [
        "Good morning, and welcome to the news.",
        "Today it is raining in Berlin.",
        "Tomorrow the sun will shine again.",
        "The city council met on Monday.",
        "It decided to build a new bridge.",
        "The bridge will cost ten million euros.",
        "Work starts next year.",
        "Thank you for watching.",
        "See you tomorrow.",
        "Goodbye.",
    ]
    t = translator(llama_server, parallel=2)  # the batches are sent at once
    calls: list[str] = []
    chat = t._chats.chat

    def counted(system: str, user: str, max_tokens: int) -> str:
        calls.append(user)
        return chat(system, user, max_tokens)

    t._chats.chat = counted
    t._chats.context_before, t._chats.context_after = 2, 1
    out = t.translate(sentences, ENG, GER)
    assert len(out) == len(sentences) and all(out), out
    assert not set(out) & set(sentences), out
    assert "Berlin" in out[1], out  # names are kept
    # The two batches are sent at once (parallel requests): in either order.
    assert any(
        c.startswith("Context, do not translate:\n(after) See you tomorrow.\n\nTranslate:\n1. ")
        for c in calls
    )
    assert len(calls) < len(sentences), calls  # batched (two batches, plus any line redone alone)


# --- AI tasks in a real service ----------------------------------------------------------------------


def _german_task(service_url: str, headers: dict[str, str], media_server: MediaServer) -> dict[str, Any]:
    with httpx.Client(base_url=service_url, headers=headers, timeout=30) as api:
        r = api.post(
            "/streaming/ai/tasks",
            json={
                "url": media_server.url("ldc93s1.wav"),
                "audio_language": "eng",
                "subtitles_language": "ger",
            },
        )
        assert r.status_code == 201, r.text
        return wait_for(api, r.json()["task_id"], timeout=300)


def _service_env(base_url: str) -> dict[str, str]:
    return {
        "VODSCRIBE_TRANSLATION_BACKENDS": "openai,whisper",
        "VODSCRIBE_OPENAI_BASE_URL": base_url,
        "VODSCRIBE_OPENAI_MODEL": "qwen2.5-coder-1.5b-instruct",
        "VODSCRIBE_OPENAI_API_KEY": API_KEY,
    }


@pytest.mark.slow  # a vodscribe serve whose worker loads Whisper, and llama_cpp.server
def test_an_ai_task_is_translated_by_the_server(
    tmp_path_factory: pytest.TempPathFactory, llama_server: str, media_server: MediaServer
) -> None:
    svc = start_service(tmp_path_factory.mktemp("svc-openai"), _service_env(llama_server))
    try:
        task = _german_task(svc.base_url, svc.headers(), media_server)
        assert task["status"] == "SUCCESS", task
        result = task["result"]
        assert result["languages"] == ["eng", "ger"]
        vtt = result["vttContent"]
        assert "greasy" not in vtt and "wash water" not in vtt  # not the English text
        assert "wasser" in vtt.lower() or "jahr" in vtt.lower(), vtt  # "... wash water all year"
        for cue in webvtt.from_string(vtt):  # laid over the 2.9 s of speech
            assert 0.0 <= cue.start_in_seconds < 2.9 and len(cue.text.split("\n")) <= 2
    finally:
        stop_service(svc)
    log = (svc.data_dir / "serve.log").read_text()
    assert "openai:qwen2.5-coder-1.5b-instruct" in log and API_KEY not in log


@pytest.mark.slow  # a vodscribe serve whose worker loads Whisper
def test_an_ai_task_fails_naming_the_server_when_it_is_down(
    tmp_path_factory: pytest.TempPathFactory, media_server: MediaServer
) -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    svc = start_service(tmp_path_factory.mktemp("svc-openai-down"), _service_env(down))
    try:
        task = _german_task(svc.base_url, svc.headers(), media_server)
    finally:
        stop_service(svc)
    assert task["status"] == "FAILURE", task
    error = task["result"]["error"]
    assert error.startswith(f"Translation server {down} could not be reached ("), error
    assert error.endswith("; gave up after 4 attempts.") and API_KEY not in error
