"""Subtitle translation through an OpenAI-compatible chat server (Ollama, vLLM, a llama.cpp server,
a hosted API).

Each batch of sentences is one ``POST {base_url}/chat/completions`` at temperature 0, prompted and
parsed like the bundled LLM's (:mod:`vodscribe.engines.chat_translation`: numbered lines with their
neighbours as context). Connection errors, timeouts, 429 and 5xx answers are retried with
exponential backoff (:data:`ATTEMPTS` attempts, none started after :data:`RETRY_WINDOW_S`); a server
that stays down, answers another HTTP error or answers something that is not a chat completion
raises :class:`~vodscribe.engines.text_translator.TranslationServiceError`, which names the server by
its base URL (never the API key) and ends the AI task as FAILURE with that message.

Which pairs it offers comes from the configured language list, without asking the server, so the
API process answers ``/ai/info`` without network traffic.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from vodscribe.engines.chat_translation import ChatLanguages, ChatTranslation
from vodscribe.engines.llm import QWEN_LANGUAGES
from vodscribe.engines.text_translator import TranslationError, TranslationServiceError
from vodscribe.languages import Language

log = logging.getLogger(__name__)

#: Requests per chat completion at most (the first and its retries).
ATTEMPTS = 4
#: Delay before the first retry, doubled for each further one (seconds).
BACKOFF_S = 0.5
#: No retry starts later than this after the first attempt began (seconds), or twice the request
#: timeout when that is longer: a chat completion takes at most the window plus one timeout.
RETRY_WINDOW_S = 30.0
#: The longest wait a ``Retry-After`` header can ask for (seconds).
MAX_RETRY_AFTER_S = 10.0
_RETRIED = {408, 429, 500, 502, 503, 504}
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL)


class OpenAIChatTranslator(ChatLanguages):
    """A :class:`~vodscribe.engines.text_translator.TextTranslator` on an OpenAI-compatible server."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        languages: frozenset[str] = QWEN_LANGUAGES,
        *,
        attempts: int = ATTEMPTS,
        backoff_s: float = BACKOFF_S,
        retry_window_s: float | None = None,
        parallel: int = 1,
    ) -> None:
        self.base_url = check_base_url(base_url)
        if not model.strip():
            raise TranslationError("The OpenAI-compatible backend needs a model name")
        if not timeout_s > 0:
            raise TranslationError(
                f"The OpenAI-compatible backend's timeout must be positive, not {timeout_s}"
            )
        self.model = model.strip()
        self.timeout_s = timeout_s
        self.languages = languages
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.retry_window_s = max(RETRY_WINDOW_S, 2 * timeout_s) if retry_window_s is None else retry_window_s
        self.name = f"openai:{self.model}"
        self._api_key = api_key or None
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        # Requests made at once (parallel slots of the server): the httpx client is thread-safe.
        self._chats = ChatTranslation(self.chat, name=self.name, parallel=parallel)

    def __repr__(self) -> str:
        return f"OpenAIChatTranslator({self.base_url!r}, {self.model!r})"

    # --- translating ------------------------------------------------------------------------------
    def translate(
        self,
        sentences: Sequence[str],
        source: Language,
        target: Language,
        glossary: Mapping[str, str] | None = None,
    ) -> list[str]:
        self.require(source, target)
        return self._chats.translate(sentences, source, target, glossary)

    def chat(self, system: str, user: str, max_tokens: int) -> str:
        """One chat completion at temperature 0, retried on transient failures; the answer's text."""
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": 0,
            "max_tokens": max_tokens,
            "stream": False,
        }
        response = self._post(body)
        return self._content(response)

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                headers = {"Accept": "application/json"}
                if self._api_key:
                    headers["Authorization"] = f"Bearer {self._api_key}"
                self._client = httpx.Client(
                    headers=headers,
                    timeout=httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)),
                    follow_redirects=False,
                )
            return self._client

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        url = f"{self.base_url}/chat/completions"
        client = self._http()
        start = time.monotonic()
        for attempt in range(1, self.attempts + 1):
            delay = self.backoff_s * 2 ** (attempt - 1)
            try:
                response = client.post(url, json=body)
            except httpx.TimeoutException:
                problem = f"did not answer within {self.timeout_s:g} s"
            except httpx.TransportError as exc:
                problem = f"could not be reached ({_reason(exc)})"
            else:
                if response.status_code < 300:
                    return response
                problem = f"answered HTTP {response.status_code}{self._detail(response)}"
                if response.status_code not in _RETRIED:
                    raise self._error(problem)
                delay = max(delay, _retry_after(response))
            if attempt == self.attempts or time.monotonic() + delay - start > self.retry_window_s:
                tries = f"{attempt} attempt" + ("s" if attempt > 1 else "")
                raise self._error(f"{problem}; gave up after {tries}")
            log.warning("%s; retrying in %.1f s", self._mask(f"{self._where()} {problem}"), delay)
            time.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _content(self, response: httpx.Response) -> str:
        try:
            data = response.json()
        except ValueError:
            raise self._error(f"answered something that is not JSON{_snippet(response.text)}") from None
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices:
            raise self._error("answered JSON without choices (is it an OpenAI-compatible /v1 URL?)")
        first = choices[0]
        message = first.get("message") if isinstance(first, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):  # a reasoning model's thoughts are not its answer
            content = _THINKING.sub("", content)
        if not isinstance(content, str) or not content.strip():
            raise self._error("answered an empty chat message")
        return content

    def _detail(self, response: httpx.Response) -> str:
        """The server's own error message, when it gives one (OpenAI's ``{"error": {"message"}}``)."""
        try:
            data = response.json()
        except ValueError:
            return _snippet(response.text)
        error = data.get("error") if isinstance(data, dict) else None
        message = (
            error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
        )
        if message is None and isinstance(data, dict):
            message = data.get("detail") if isinstance(data.get("detail"), str) else None
        return _snippet(message) if isinstance(message, str) else ""

    def _where(self) -> str:
        return f"Translation server {self.base_url}"

    def _error(self, problem: str) -> TranslationServiceError:
        message = f"{self._where()} {problem}"
        return TranslationServiceError(self._mask(message if message.endswith(".") else f"{message}."))

    def _mask(self, text: str) -> str:
        """``text`` without the API key (a server may quote it in an error message)."""
        return text.replace(self._api_key, "***") if self._api_key else text


def check_base_url(base_url: str) -> str:
    """``base_url`` without its trailing slash; :class:`TranslationError` unless it is a plain
    ``http(s)://host[:port][/path]`` URL."""
    url = base_url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        raise TranslationError(f"Bad OpenAI-compatible base URL {base_url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TranslationError(
            f"Bad OpenAI-compatible base URL {base_url!r}: expected http(s)://host[:port]/v1"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise TranslationError(
            "Bad OpenAI-compatible base URL: no credentials, query or fragment (the API key has its "
            "own setting)"
        )
    return url


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", "0")), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return 0.0


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        return ""
    return ": " + (text if len(text) <= 200 else text[:197] + "...")
