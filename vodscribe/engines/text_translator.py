"""What a text translation engine is: sentences in one language in, the same number out in another.

Engines work on plain sentences; turning subtitle segments into sentences and the translations back
into timed segments is :mod:`vodscribe.speech.subtitle_translation`'s job, so every engine gets the same
sentence-aware treatment. Languages are :class:`vodscribe.languages.Language` objects; each engine
maps them onto its own codes (NLLB's ``deu_Latn``, M2M100's ``__de__``...).

An engine says which pairs it can produce without loading its weights (:meth:`supports`), so the API
server can answer ``/ai/info`` and refuse a pair cheaply; the weights load on the first
:meth:`translate` call, in a worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from vodscribe.errors import MediaError
from vodscribe.languages import Language


class TranslationError(RuntimeError):
    """An engine could not translate (bad model directory, unsupported pair, broken output)."""


class TranslationServiceError(TranslationError, MediaError):
    """A remote translation server could not be used (down, an HTTP error, a nonsense answer).

    Also a :class:`~vodscribe.errors.MediaError`, so the AI task ends as FAILURE with this message
    (naming the server, never its credentials) instead of being retried as an internal error.
    """

    def __init__(self, message: str) -> None:
        MediaError.__init__(self, message)


@runtime_checkable
class TextTranslator(Protocol):
    """A text translation engine (CTranslate2 NMT, a local LLM...)."""

    name: str
    """Short name shown in logs, benchmarks and results (``"nmt:nllb-200-distilled-600M"``)."""

    def supports(self, source: Language, target: Language) -> bool:
        """Whether this engine can translate ``source`` -> ``target`` (cheap: no weights loaded)."""
        ...

    def targets(self) -> frozenset[str]:
        """ISO 639-2/B codes of every language this engine can translate into (from some source)."""
        ...

    def translate(
        self,
        sentences: Sequence[str],
        source: Language,
        target: Language,
        glossary: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Translate ``sentences`` (batched inside); returns exactly one string per input sentence.
        ``glossary``: terms of the sentences and how to write them in ``target`` (an engine that
        cannot be told may ignore it: its output is checked against it afterwards).

        Raises :class:`TranslationError` for a pair :meth:`supports` rejects.
        """
        ...
