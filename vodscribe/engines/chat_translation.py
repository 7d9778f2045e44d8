"""Translating sentences with any chat model: numbered batches in, numbered lines out.

Both chat backends (the bundled llama.cpp model, :mod:`vodscribe.engines.llm`, and an
OpenAI-compatible server, :mod:`vodscribe.engines.openai_chat`) share this logic; each supplies only
a ``chat(system, user, max_tokens) -> reply`` callable, and the local model a ``chat_many`` that
decodes several requests at once.

* The requests go in two rounds, each sent at once so that a backend can answer them in parallel:
  every numbered batch first, then every sentence redone one by one. The answers of the first round
  are read in order, as if they had come one after another (a batch is judged by the ratio that
  the batches before it taught).

* Sentences go in small numbered batches, one sentence per line, and come back as numbered lines.
* A batch can carry the sentences just before and after it (:data:`CONTEXT_BEFORE`,
  :data:`CONTEXT_AFTER`, off by default: measured, it did not help), unnumbered and marked as
  context not to translate. The context is written above the numbered lines, so a model that
  translates it anyway does so above its numbered answer rather than as one more numbered line.
* The numbers alone do not keep translations on their sentences: a small model given fragments
  tends to join two lines into one and then number the rest of its answer on from there, every
  later line one sentence off (the bundled 1.5B model did so on a batch of fragments). So answers
  are also checked by length, against the ratio of translation to source length learnt from the
  answers already trusted for the language pair (:meth:`ChatTranslation.ratio`):

  - an answer with every number is kept, up to a line that is far out of proportion to its
    sentence and looks like it holds its neighbour too (or is far too short);
  - an incomplete answer is kept only while its total length fits the lines it answered (not
    the whole batch) and up to the first line closer to its sentence plus a neighbour than to its
    sentence alone; the last answered line before missing ones at the end is redone too (the
    answer stopped early and may have cut it short). The rest is redone one by one, so the lines
    that did come back are not asked for twice;
  - before any ratio is known for the pair, an incomplete answer is redone whole, one by one (and
    those single answers teach the ratio);
  - an answer numbering a line the batch does not have is discarded whole.

* The one-by-one requests send the sentence alone: a plain answer could not be told apart from a
  translated context line.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from vodscribe.engines.text_translator import TranslationError
from vodscribe.languages import Language

log = logging.getLogger(__name__)

Chat = Callable[[str, str, int], str]
"""``chat(system, user, max_tokens)``: one chat completion at temperature 0; the answer's text."""


class ChatRequest(NamedTuple):
    """One chat completion to make: the system prompt, the user's message, the answer's token budget."""

    system: str
    user: str
    max_tokens: int


ChatMany = Callable[[Sequence[ChatRequest]], list[str]]
"""``chat_many(requests)``: the answers to several requests made at once, in order."""

#: Sentences per request, and a cap on their total length (characters).
BATCH_SENTENCES = 8
BATCH_CHARS = 800
#: Neighbouring sentences sent along with a batch as context (before it, after it). Off by default:
#: on 16 NTREX sentences a pair (bench/translate.py's data, 2 before + 1 after) it moved chrF by
#: en-de -0.6, en-fr -1.1, de-en +1.5 (no better on average) and cost 0.2-0.6 s a sentence; the
#: pipeline already hands over whole sentences, not cue fragments.
CONTEXT_BEFORE = 0
CONTEXT_AFTER = 0
#: Source characters of trusted translations needed before the length ratio of a pair is used.
MIN_RATIO_CHARS = 80
#: How far out of proportion (either way) a line of a complete answer must be to be redone.
OUT_OF_PROPORTION = 1.8
#: Slack in the length checks, in source characters (short lines vary most).
SLACK_CHARS = 5

NUMBERED = re.compile(r"^\s*(\d+)\s*[.):：、]\s*(.*)$")


class ChatLanguages:
    """What a chat backend offers: any two of its ``languages`` (ISO 639-2/B codes), either way."""

    name: str
    languages: frozenset[str]

    def supports(self, source: Language, target: Language) -> bool:
        return source is not target and source.b in self.languages and target.b in self.languages

    def targets(self) -> frozenset[str]:
        return self.languages

    def require(self, source: Language, target: Language) -> None:
        """Raise :class:`TranslationError` for a pair :meth:`supports` rejects."""
        if not self.supports(source, target):
            raise TranslationError(f"{self.name} cannot translate {source.name} to {target.name}")


class ChatTranslation:
    """Translate sentences through ``chat`` (see the module docstring); ``name`` appears in logs.

    ``chat_many`` answers several requests at once (the local model decodes them as parallel
    sequences); without it, up to ``parallel`` requests are sent at once through ``chat``.
    One instance per backend: it keeps the length ratios it has learnt, per language pair; it may
    be used from several threads at once.
    """

    def __init__(
        self,
        chat: Chat | None = None,
        *,
        name: str = "LLM",
        batch_sentences: int = BATCH_SENTENCES,
        batch_chars: int = BATCH_CHARS,
        context_before: int = CONTEXT_BEFORE,
        context_after: int = CONTEXT_AFTER,
        chat_many: ChatMany | None = None,
        parallel: int = 1,
    ) -> None:
        if chat is None and chat_many is None:
            raise TypeError("ChatTranslation needs chat or chat_many")
        self.chat = chat
        self.chat_many = chat_many
        self.parallel = parallel
        self.name = name
        self.batch_sentences = batch_sentences
        self.batch_chars = batch_chars
        self.context_before = context_before
        self.context_after = context_after
        self._lengths: dict[tuple[str, str], tuple[int, int]] = {}  # pair -> (source, translation) chars
        self._lengths_lock = threading.Lock()

    def translate(
        self,
        sentences: Sequence[str],
        source: Language,
        target: Language,
        glossary: Mapping[str, str] | None = None,
    ) -> list[str]:
        """One translation per sentence (blank sentences stay blank); each request lists the terms
        of ``glossary`` its lines hold, with how to write them.

        Two rounds of requests, each sent at once (:meth:`chats`): every numbered batch, then every
        line that no batch answered in a way that can be trusted, one by one."""
        texts = [" ".join(s.split()) for s in sentences]
        out = [""] * len(texts)
        todo = [i for i, text in enumerate(texts) if text]
        asked: list[tuple[list[int], ChatRequest]] = []
        alone: list[int] = []
        at = 0  # where the batch starts in todo
        for batch in batches(todo, texts, self.batch_sentences, self.batch_chars):
            end = at + len(batch)
            if len(batch) > 1:
                before = [texts[i] for i in todo[max(0, at - self.context_before) : at]]
                after = [texts[i] for i in todo[end : end + self.context_after]]
                lines = [texts[i] for i in batch]
                terms = _terms_in(glossary, lines)
                asked.append((batch, batch_request(lines, source, target, before, after, terms)))
            else:
                alone += batch
            at = end
        replies = self.chats([request for _, request in asked])
        # Read in order, as if asked one after another: a batch is checked against the length ratio
        # that the batches before it taught.
        for (batch, _), reply in zip(asked, replies, strict=True):
            found = self._read_batch(reply, [texts[i] for i in batch], source, target)
            for k, i in enumerate(batch):
                if k in found:
                    out[i] = found[k]
                else:
                    alone.append(i)
        alone.sort()
        answers = self.chats(
            [single_request(texts[i], source, target, _terms_in(glossary, [texts[i]])) for i in alone]
        )
        for i, reply in zip(alone, answers, strict=True):
            out[i] = self._read_one(reply, texts[i], source, target)
        return out

    def chats(self, requests: Sequence[ChatRequest]) -> list[str]:
        """The replies to ``requests``, in order: through ``chat_many`` when the backend has one,
        else ``chat`` on up to ``parallel`` threads."""
        if not requests:
            return []
        if self.chat_many is not None:
            replies = self.chat_many(requests)
            if len(replies) != len(requests):
                raise TranslationError(f"{self.name} gave {len(replies)} replies to {len(requests)} requests")
            return replies
        chat = self.chat
        assert chat is not None  # the constructor has one of the two
        if self.parallel <= 1 or len(requests) == 1:
            return [chat(r.system, r.user, r.max_tokens) for r in requests]
        with ThreadPoolExecutor(min(self.parallel, len(requests)), thread_name_prefix="chat") as pool:
            return list(pool.map(lambda r: chat(r.system, r.user, r.max_tokens), requests))

    def _read_batch(
        self, reply: str, texts: Sequence[str], source: Language, target: Language
    ) -> dict[int, str]:
        found = parse_numbered(reply, len(texts))
        if found is None:
            log.info(
                "%s numbered lines the batch does not have; redoing %d one by one", self.name, len(texts)
            )
            return {}
        kept = trusted(found, texts, self.ratio(source, target))
        if len(found) < len(texts):
            log.info(
                "%s answered %d of %d numbered lines; redoing %d one by one",
                self.name,
                len(found),
                len(texts),
                len(texts) - len(kept),
            )
        elif len(kept) < len(texts):
            log.info(
                "%s answered lines out of proportion to their sentences; redoing %d of %d one by one",
                self.name,
                len(texts) - len(kept),
                len(texts),
            )
        else:
            self._learn(source, target, texts, [kept[k] for k in range(len(texts))])
        return kept

    def _read_one(self, reply: str, text: str, source: Language, target: Language) -> str:
        lines = [line for line in reply.splitlines() if line.strip()]
        if not lines:
            return text  # better the original line than an empty subtitle
        match = NUMBERED.match(lines[0])
        if match and match.group(2).strip() and not NUMBERED.match(text):  # it numbered its answer
            answer = clean(match.group(2))
        else:
            answer = clean(" ".join(lines))
        self._learn(source, target, [text], [answer])
        return answer

    def ratio(self, source: Language, target: Language) -> float | None:
        """Translation length over source length for the pair, from the answers trusted so far
        (None until they hold :data:`MIN_RATIO_CHARS` source characters)."""
        with self._lengths_lock:
            src, out = self._lengths.get((source.b, target.b), (0, 0))
        return out / src if src >= MIN_RATIO_CHARS and out else None

    def _learn(
        self, source: Language, target: Language, texts: Sequence[str], answers: Sequence[str]
    ) -> None:
        key = (source.b, target.b)
        with self._lengths_lock:
            src, out = self._lengths.get(key, (0, 0))
            self._lengths[key] = (src + sum(map(len, texts)), out + sum(map(len, answers)))


def system_prompt(source: Language, target: Language, lines: int, *, context: bool = False) -> str:
    """The instructions: a batch of ``lines`` numbered lines (after their context), or, for 0, one
    line answered in plain text."""
    task = (
        f"You are a professional subtitle translator. Translate from {source.name} into {target.name}. "
        "Keep names and numbers as they are, keep the meaning and the tone of speech, and write natural "
        f"{target.name}, with no {source.name} words left in the translation."
    )
    if not lines:
        return f"{task} Answer with the translation only, on one line, and nothing else."
    sent = f"The user sends {lines} numbered subtitle lines"
    if context:
        sent += (
            " after the lines spoken just before and after them, as context: use the context to "
            "understand the numbered lines, but do not translate it"
        )
    return (
        f"{task} {sent}. Answer with exactly {lines} numbered lines, the translation of each line on the "
        "line with its number, and nothing else. Lines are often parts of one sentence: translate each "
        "on its own line and never join two lines into one."
    )


def batch_request(
    texts: Sequence[str],
    source: Language,
    target: Language,
    before: Sequence[str] = (),
    after: Sequence[str] = (),
    glossary: Mapping[str, str] | None = None,
) -> ChatRequest:
    """The request for one numbered batch of ``texts`` (after their context and the glossary)."""
    numbered = "\n".join(f"{n}. {text}" for n, text in enumerate(texts, 1))
    system = system_prompt(source, target, len(texts), context=bool(before or after))
    return ChatRequest(
        system, glossary_note(glossary, target) + user_prompt(numbered, before, after), budget(numbered)
    )


def single_request(
    text: str, source: Language, target: Language, glossary: Mapping[str, str] | None = None
) -> ChatRequest:
    """The request for one sentence alone (sent alone: a plain answer could not be told apart from
    a translated context line). With a glossary, the glossary and the sentence are marked apart."""
    if not glossary:
        return ChatRequest(system_prompt(source, target, 0), text, budget(text))
    return ChatRequest(
        system_prompt(source, target, 0),
        glossary_note(glossary, target) + "Translate:\n" + text,
        budget(text),
    )


def glossary_note(glossary: Mapping[str, str] | None, target: Language) -> str:
    """The glossary as the user prompt's first lines ("" without one). It goes in the user prompt,
    after the system prompt that every request of the pair shares, so that shared prefix stays."""
    if not glossary:
        return ""
    lines = [
        f"- {term} -> {rendering}" if rendering != term else f"- {term} (keep as it is)"
        for term, rendering in glossary.items()
    ]
    return f"Glossary, write these terms in {target.name} exactly so:\n" + "\n".join(lines) + "\n\n"


def _terms_in(glossary: Mapping[str, str] | None, texts: Sequence[str]) -> dict[str, str]:
    """The entries of ``glossary`` whose term one of ``texts`` holds (any case)."""
    if not glossary:
        return {}
    joined = " ".join(texts).casefold()
    return {term: rendering for term, rendering in glossary.items() if term.casefold() in joined}


def user_prompt(numbered: str, before: Sequence[str] = (), after: Sequence[str] = ()) -> str:
    """The numbered lines after their context (only the lines when there is none)."""
    if not before and not after:
        return numbered
    context = [f"(before) {text}" for text in before] + [f"(after) {text}" for text in after]
    return "Context, do not translate:\n" + "\n".join(context) + "\n\nTranslate:\n" + numbered


def parse_numbered(reply: str, count: int) -> dict[int, str] | None:
    """The non-empty numbered lines of ``reply`` by 0-based position (the first of a repeated number
    wins); None when it numbers a line outside 1..``count`` (its numbering cannot be trusted)."""
    found: dict[int, str] = {}
    for line in reply.splitlines():
        match = NUMBERED.match(line)
        if match and match.group(2).strip():
            n = int(match.group(1))
            if not 1 <= n <= count:
                return None
            found.setdefault(n - 1, clean(match.group(2)))
    return found


def trusted(found: dict[int, str], texts: Sequence[str], ratio: float | None) -> dict[int, str]:
    """The lines of a numbered answer that can be kept, by length (see the module docstring).

    ``found``: the answer's lines by position in ``texts``; ``ratio``: the expected translation
    length over source length, None while unknown.
    """
    count = len(texts)
    complete = len(found) == count
    if ratio is None:
        return dict(found) if complete else {}
    size = [ratio * len(text) for text in texts]  # the expected length of each translation
    slack = ratio * SLACK_CHARS
    if not complete:
        have = sum(len(found[k]) for k in found)
        own = sum(size[k] for k in found)
        if have > own + (sum(size) - own) / 2 + slack:  # nearer the whole batch: it holds missing lines
            return {}
    kept: dict[int, str] = {}
    for k in sorted(found):
        length = len(found[k])
        beside = [size[j] for j in (k - 1, k + 1) if 0 <= j < count and (j == k + 1 or j not in found)]
        merged = length > size[k] + max(beside, default=0.0) / 2 + slack  # nearer its own plus a neighbour
        if complete:
            far = length > OUT_OF_PROPORTION * size[k] + slack or length < size[k] / OUT_OF_PROPORTION - slack
            if far and (merged or length < size[k]):
                break  # this line and, renumbered after it, every later one
        elif merged or length < size[k] / OUT_OF_PROPORTION - slack:
            break
        kept[k] = found[k]
    last = max(found, default=-1)
    if not complete and last < count - 1:
        kept.pop(last, None)  # the answer stopped early: its last line may be cut short
    return kept


def budget(text: str) -> int:
    """``max_tokens`` for translating ``text``."""
    return 64 + 3 * len(text) // 2


def clean(text: str) -> str:
    """One line, without the quotes a model may have put around the whole of it."""
    text = " ".join(text.split())
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'" and text.count(text[0]) == 2:
        text = text[1:-1]
    return text


def batches(
    indexes: Sequence[int],
    sentences: Sequence[str],
    size: int = BATCH_SENTENCES,
    chars: int = BATCH_CHARS,
) -> list[list[int]]:
    """``indexes`` in order, cut into runs of at most ``size`` sentences and ``chars`` characters."""
    result: list[list[int]] = []
    length = 0
    for i in indexes:
        n = len(sentences[i])
        if result and len(result[-1]) < size and length + n <= chars:
            result[-1].append(i)
            length += n
        else:
            result.append([i])
            length = n
    return result
