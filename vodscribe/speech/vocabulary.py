"""A team's vocabulary: the names and terms it cares about, recognised and translated the way it
writes them.

Three uses, one list:

* **Recognition** gets the terms as Whisper's hotwords (:func:`hotwords`): text put before each
  window's prompt, which biases the decoder towards those spellings.
* **A post-pass** (:func:`fix_segments`) then puts the written form wherever the recognised words
  are a near miss of a term, since hotwords are only a bias: "Comfy UI", "comfyui" or "Comfy you I"
  become "ComfyUI". A near miss is whole words only (never part of another word): either the same
  letters and digits with other spacing, case or punctuation, or, for terms of at least
  :data:`MIN_FUZZY_CHARS` characters, the same sound (Metaphone) and at least :data:`MIN_RATIO`
  similar letters. So "core" never becomes "Gcore" (another sound), and nothing becomes a term
  that was not said close to it.
* **Translation** gets, per sentence, the terms the sentence holds with their renderings in the
  target language (:func:`glossary`; a term without one stays as written), and what comes back is
  checked: a rendering that came back as a near miss is put right (:func:`repair`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import jellyfish
from rapidfuzz import fuzz

from vodscribe.engines.results import SpeechSegment, Word

#: Terms shorter than this (letters and digits) are only matched exactly (spacing, case aside).
MIN_FUZZY_CHARS = 6
#: How alike (rapidfuzz ratio, 0-100) the letters of a near miss and its term must be.
MIN_RATIO = 80.0
#: A term is looked for in runs of up to its own word count plus this many recognised words.
EXTRA_WORDS = 2
_NOT_ALNUM = re.compile(r"[\W_]+", re.UNICODE)
_EDGE = re.compile(r"^(\s*\W*)(.*?)(\W*)$", re.UNICODE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class Term:
    """A term as the team writes it, and how it is written in other languages (ISO 639-2/B codes);
    a language it has no rendering for keeps it as written."""

    text: str
    renderings: Mapping[str, str] = field(default_factory=dict)

    def rendering(self, language: str) -> str:
        return self.renderings.get(language, self.text)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    terms: tuple[Term, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms)

    @staticmethod
    def of(items: Iterable[str | Mapping[str, object]]) -> Vocabulary:
        """From the API's shape: a term as a string, or ``{"term", "translations": {lang: text}}``."""
        terms: dict[str, Term] = {}
        for item in items:
            if isinstance(item, str):
                term = Term(item.strip())
            else:
                given = item.get("translations")
                renderings = (
                    {str(k): str(v).strip() for k, v in given.items()} if isinstance(given, Mapping) else {}
                )
                term = Term(str(item.get("term", "")).strip(), renderings)
            if term.text and _norm(term.text):
                terms[term.text] = term  # the last of two same terms wins
        return Vocabulary(tuple(terms.values()))


def _norm(text: str) -> str:
    return _NOT_ALNUM.sub("", text.casefold())


def hotwords(vocabulary: Vocabulary) -> str | None:
    """The terms as Whisper's hotwords (faster-whisper keeps at most half its context of them)."""
    return ", ".join(t.text for t in vocabulary.terms) or None


def _near_miss(heard: str, term: str) -> bool:
    if not heard or not term:
        return False
    if heard == term:
        return True
    if len(term) < MIN_FUZZY_CHARS or abs(len(heard) - len(term)) > max(2, len(term) // 3):
        return False
    return fuzz.ratio(heard, term) >= MIN_RATIO and jellyfish.metaphone(heard) == jellyfish.metaphone(term)


def _find(words: Sequence[str], term: str) -> list[tuple[int, int]]:
    """Non-overlapping runs ``[i, j)`` of ``words`` that are a near miss of ``term``, longest first
    where two overlap."""
    target = _norm(term)
    norms = [_norm(w) for w in words]
    count = len(term.split())
    # A term written in lower case is a common word ("checkout"): words heard apart ("check out")
    # stay apart. A name ("ComfyUI", "Gcore") is looked for across the words Whisper split it into.
    width = count + EXTRA_WORDS if term != term.lower() else count
    slack = max(2, len(target) // 3)
    found: list[tuple[int, int]] = []
    taken: set[int] = set()
    for length in range(width, 0 if term != term.lower() else count - 1, -1):
        for i in range(len(words) - length + 1):
            j = i + length
            # A run starts and ends on a word with letters (a dash alone is not part of a term).
            if not norms[i] or not norms[j - 1] or taken.intersection(range(i, j)):
                continue
            heard = "".join(norms[i:j])
            if abs(len(heard) - len(target)) <= slack and _near_miss(heard, target):
                found.append((i, j))
                taken.update(range(i, j))
    return sorted(found)


def _spread(term: str, first: Word, last: Word, leading: str, trailing: str) -> list[Word]:
    """The term's words over the time of the run they replace, in proportion to their length."""
    parts = term.split()
    total = sum(len(p) for p in parts) or 1
    span = max(last.end - first.start, 0.0)
    out, done = [], 0
    for k, part in enumerate(parts):
        start = first.start + span * done / total
        done += len(part)
        text = (leading if k == 0 else " ") + part + (trailing if k == len(parts) - 1 else "")
        out.append(
            Word(start, first.start + span * done / total, text, min(first.probability, last.probability))
        )
    return out


#: How alike (rapidfuzz ratio) words must be to a term for their segment to be heard again with
#: the vocabulary as hotwords (:func:`maybe_said`): loose, since hearing again only adds a chance.
CANDIDATE_RATIO = 60.0


def maybe_said(words: Sequence[str], vocabulary: Vocabulary) -> bool:
    """Whether some run of ``words`` is loosely like a term not written as such yet ("confu i" for
    "ComfyUI"): worth hearing that speech again with the terms as hotwords."""
    norms = [_norm(w) for w in words]
    for term in vocabulary.terms:
        target = _norm(term.text)
        width = len(term.text.split()) + EXTRA_WORDS
        for length in range(1, width + 1):
            for i in range(len(norms) - length + 1):
                heard = "".join(norms[i : i + length])
                if (
                    heard == target
                    or not norms[i]
                    or not 0.5 * len(target) <= len(heard) <= 1.5 * len(target)
                ):
                    continue
                if fuzz.ratio(heard, target) >= CANDIDATE_RATIO:
                    return True
    return False


def says(text: str, term: str) -> bool:
    """Whether ``text`` holds ``term`` as written (whole words; case, spacing and punctuation aside)."""
    words = text.split()
    target = _norm(term)
    return any(_norm("".join(words[i:j])) == target for i, j in _find(words, term))


def fix_words(words: Sequence[Word], vocabulary: Vocabulary) -> tuple[Word, ...]:
    """``words`` with each near miss of a term written as the term (longer terms first)."""
    out = list(words)
    for term in sorted(vocabulary.terms, key=lambda t: -len(_norm(t.text))):
        runs = _find([w.text for w in out], term.text)
        for i, j in reversed(runs):
            leading = _EDGE.match(out[i].text)
            trailing = _EDGE.match(out[j - 1].text)
            lead = leading.group(1) if leading else ""
            trail = trailing.group(3) if trailing else ""
            text = term.text
            if text == text.lower():  # a common word: its case is the sentence's ("Checkout" first)
                if _norm("".join(w.text for w in out[i:j])) == _norm(text):
                    continue
                if out[i].text.strip()[:1].isupper():
                    text = text[:1].upper() + text[1:]
            out[i:j] = _spread(text, out[i], out[j - 1], lead, trail)
    return tuple(out)


def fix_segments(segments: Sequence[SpeechSegment], vocabulary: Vocabulary) -> list[SpeechSegment]:
    """Segments with their words' near misses of the vocabulary's terms put right (a segment without
    word times is left as it is)."""
    if not vocabulary:
        return list(segments)
    fixed = []
    for seg in segments:
        if not seg.words:
            fixed.append(seg)
            continue
        words = fix_words(seg.words, vocabulary)
        if words != seg.words:
            seg = replace(seg, words=words, text="".join(w.text for w in words))
        fixed.append(seg)
    return fixed


def glossary(vocabulary: Vocabulary, text: str, target: str) -> dict[str, str]:
    """The terms ``text`` holds (whole words, any case), each with its rendering in ``target``."""
    return {term.text: term.rendering(target) for term in vocabulary.terms if says(text, term.text)}


def repair(translation: str, wanted: Mapping[str, str]) -> str:
    """``translation`` with each wanted rendering that came back as a near miss written as it
    should be ("GCore" for "Gcore", "Kasse," kept with its comma)."""
    if not wanted:
        return translation
    words = [Word(0.0, 0.0, w) for w in re.findall(r"\s*\S+", translation)]
    fixed = fix_words(words, Vocabulary(tuple(Term(r) for r in set(wanted.values()))))
    return "".join(w.text for w in fixed)
