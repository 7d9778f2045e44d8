"""Turn ASR output into readable subtitle cues, following Netflix's timed-text style rules.

The input is Whisper's segments with word timestamps; the output is a list of :class:`Cue`, sorted,
non-overlapping, each at most ``max_lines`` lines of at most ``max_line_chars`` characters.

How words are grouped into cues
    Consecutive segments of one language form a *run*; a language change always starts a new cue.
    Inside a run the words are split into cues by dynamic programming over the possible break
    points, so the choice is the best for the whole run, not a greedy one. Hard limits: the text
    must fit the lines (a single word longer than a line may stand alone on its line) and the
    spoken time of a cue's words must not exceed ``max_duration``. Among the splits within those
    limits the cheapest wins, where a cue ending

    * at a sentence end (``. ? ! …``, CJK ``。？！``) costs nothing,
    * at a clause boundary (``, ; : —``, CJK ``，、；``) costs a little,
    * at a long pause between words (more than :data:`LONG_PAUSE`) costs more,
    * anywhere else costs most (but never inside a word: words are the smallest unit).

    Every cue also costs a little, and so does an under-filled cue, so short sentences are paired
    into one cue when they fit; a long pause *inside* a cue is penalised by its length, so text is
    not shown long before it is spoken.

How a cue's text is broken into lines
    A cue that fits on one line stays one line. Otherwise it takes the fewest lines it needs,
    balanced in length, preferring a break after punctuation, never leaving a lone word on a line
    when a better balance exists, and on a tie keeping the top line the shorter one (the "pyramid").

How cues are timed
    A cue starts when its first word starts and lasts until its last word ends, then its end is
    extended into the following silence so it lasts at least ``min_duration`` and reads at no more
    than ``max_cps`` characters per second, never past ``max_duration``, and always leaving
    ``frame_gap`` before the next cue. A gap shorter than :data:`CLOSE_GAP` left after that is
    closed down to ``frame_gap`` ("chaining", so subtitles do not flicker off and on). Times are
    whole milliseconds, so they render exactly.

Clean-up
    Whisper's hallucination loops (the same text 3 or more times in a row) are collapsed to one,
    both as segments and as cues, and empty words and cues are dropped.

CJK (Chinese, Japanese) text has no spaces between words: lengths are counted in characters and no
space is ever put between two CJK characters, whether the words come from one segment or two.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from vodscribe.engines.results import Cue, SpeechSegment, Word

#: Han ideographs, kana and bopomofo: scripts written without spaces between words.
_CJK_LETTERS = (
    "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0003134f"
)
#: CJK symbols and punctuation and the full/half-width forms (U+3000, the ideographic space, excluded).
_CJK_PUNCT = "\u3001-\u303f\uff00-\uffef"
_CJK = re.compile(f"[{_CJK_LETTERS}{_CJK_PUNCT}]")
_SPACE_BETWEEN_CJK = re.compile(f"(?<=[{_CJK_LETTERS}{_CJK_PUNCT}])\\s+(?=[{_CJK_LETTERS}{_CJK_PUNCT}])")
#: Words of a text without timestamps: one CJK character (with the punctuation after it), a run of
#: CJK punctuation, or a run of other non-space characters; each keeps the whitespace before it.
_TEXT_UNIT = re.compile(
    f"\\s*(?:[{_CJK_LETTERS}][{_CJK_PUNCT}]*|[{_CJK_PUNCT}]+|[^\\s{_CJK_LETTERS}{_CJK_PUNCT}]+)"
)
_NOT_WORD = re.compile(r"[\W_]+")

SENTENCE_END = frozenset(".?!…。？！｡‼⁇⁈⁉؟।")
CLAUSE_END = frozenset(",;:—–，、；：،؛")
#: Closing quotes and brackets, looked through when checking a word's final punctuation.
_CLOSERS = "\"'”’»)]}」』）】〉》〕"

#: A silence between two words longer than this (seconds) is a natural place to end a cue.
LONG_PAUSE = 0.5
#: A gap between two cues shorter than this (seconds) is closed down to the frame gap.
CLOSE_GAP = 0.5
#: This many identical texts in a row are a hallucination loop, collapsed to the first one.
REPEAT_LOOP = 3

# Costs of the cue split (see the module docstring); only their relative sizes matter.
_CUE_COST = 1.0
_UNDERFILL_COST = 2.0
_PAUSE_COST_PER_SECOND = 4.0
_SENTENCE_INSIDE_COST = 3.0
_SENTENCE_MIDLINE_COST = 2.5
_BREAK_COST_SENTENCE = 0.0
_BREAK_COST_CLAUSE = 3.0
_BREAK_COST_CLAUSE_AND_PAUSE = 2.0
_BREAK_COST_PAUSE = 5.0
_BREAK_COST_ANYWHERE = 10.0

# Costs of the line split, in characters of imbalance.
_LINE_BONUS_SENTENCE = 20.0
_LINE_BONUS_CLAUSE = 10.0
_LINE_COST_ORPHAN = 15.0
_LINE_COST_TOP_HEAVY = 0.5

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ReadingRules:
    """How much a viewer can read: the common broadcast and streaming rules (Netflix's timed-text
    guide, for one). Cues are built to them here, and the console's subtitle editor warns against
    them (they reach it in the page's config, :func:`vodscribe.api.console.render_console_page`)."""

    max_line_chars: int = 42
    max_lines: int = 2
    min_duration: float = 5 / 6
    max_duration: float = 7.0
    max_cps: float = 17.0
    """Characters per second."""


READING_RULES = ReadingRules()


@dataclass(frozen=True, slots=True)
class _Token:
    """A word ready for layout: stripped text and whether a space separates it from the word before."""

    start: float
    end: float
    text: str
    space: bool


@dataclass(frozen=True, slots=True)
class _Rules:
    """The limits of :func:`build_cues`, with the times in whole milliseconds."""

    max_line_chars: int
    max_lines: int
    max_duration: float
    max_cps: float
    min_duration_ms: int
    max_duration_ms: int
    gap_ms: int

    @property
    def capacity(self) -> int:
        return self.max_line_chars * self.max_lines


@dataclass(frozen=True, slots=True)
class _Draft:
    """A cue before timing: its words' spoken span and its laid-out text."""

    start: float
    speech_end: float
    text: str


def build_cues(
    segments: Sequence[SpeechSegment],
    *,
    max_line_chars: int = READING_RULES.max_line_chars,
    max_lines: int = READING_RULES.max_lines,
    min_duration: float = READING_RULES.min_duration,
    max_duration: float = READING_RULES.max_duration,
    max_cps: float = READING_RULES.max_cps,
    frame_gap: float = 2 / 25,
) -> list[Cue]:
    """Group the words of ``segments`` into subtitle cues; see the module docstring for the rules.

    Segments without word timestamps are split into words whose times are spread over the
    segment's span in proportion to their length.
    """
    if max_line_chars < 1 or max_lines < 1:
        raise ValueError("max_line_chars and max_lines must be at least 1")
    if not (0 <= min_duration <= max_duration and max_duration > 0 and max_cps > 0 and frame_gap >= 0):
        raise ValueError("need 0 <= min_duration <= max_duration, 0 < max_duration, 0 < max_cps, 0 <= gap")
    rules = _Rules(
        max_line_chars=max_line_chars,
        max_lines=max_lines,
        max_duration=max_duration,
        max_cps=max_cps,
        min_duration_ms=math.ceil(min_duration * 1000),
        max_duration_ms=math.floor(max_duration * 1000),
        gap_ms=math.ceil(frame_gap * 1000),
    )
    ordered = sorted(segments, key=lambda segment: segment.start)
    kept = _collapse_loops(ordered, key=lambda seg: (seg.language.casefold(), _loop_key(_spoken_text(seg))))
    drafts: list[_Draft] = []
    for run in _language_runs(kept):
        tokens = _run_tokens(run)
        drafts += [_draft(cue_tokens, rules) for cue_tokens in _split_run(tokens, rules)]
    drafts = list(_collapse_loops(drafts, key=lambda draft: _loop_key(draft.text)))
    return _time_cues(drafts, rules)


def flatten_text(text: str) -> str:
    """Return ``text`` as one line of prose.

    Line breaks and whitespace runs become a single space, except between two CJK characters,
    where the whitespace is dropped (CJK text has no spaces between words).
    """
    return _SPACE_BETWEEN_CJK.sub("", " ".join(text.split()))


def concatenated_text(cues_or_segments: Iterable[Cue | SpeechSegment]) -> str:
    """Return the full text of cues or segments as plain prose (see :func:`flatten_text`)."""
    return flatten_text(" ".join(item.text for item in cues_or_segments))


# --- clean-up -------------------------------------------------------------------------------------


def _loop_key(text: str) -> str:
    """Text compared for repetition loops: case, punctuation and spacing do not count."""
    return _NOT_WORD.sub(" ", text.casefold()).strip()


def _spoken_text(segment: SpeechSegment) -> str:
    """The segment's text as its words spell it (the text field when it has no words)."""
    return "".join(word.text for word in segment.words) if segment.words else segment.text


def _collapse_loops(items: Iterable[_T], key: Callable[[_T], object]) -> Iterator[_T]:
    """Yield ``items``, but only the first of :data:`REPEAT_LOOP` or more in a row with one key."""
    for _, group in itertools.groupby(items, key=key):
        repeats = list(group)
        if len(repeats) >= REPEAT_LOOP:
            yield repeats[0]
        else:
            yield from repeats


# --- words ----------------------------------------------------------------------------------------


def _language_runs(segments: Iterable[SpeechSegment]) -> Iterator[list[SpeechSegment]]:
    """Group consecutive segments of one language; words of two runs never share a cue."""
    for _, run in itertools.groupby(segments, key=lambda segment: segment.language.casefold()):
        yield list(run)


def _run_tokens(run: Sequence[SpeechSegment]) -> list[_Token]:
    """Flatten a run's words into tokens, deciding where spaces go.

    A word is preceded by a space if Whisper gave it a leading space or it starts a segment, except
    between two CJK characters. Empty words are dropped and times are made sane (``0 <= start <=
    end``).
    """
    tokens: list[_Token] = []
    for segment in run:
        starts_segment = True
        for word in segment.words or _words_from_text(segment):
            text = word.text.strip()
            if not text:
                continue
            space = starts_segment or word.text[:1].isspace()
            if tokens and _is_cjk(tokens[-1].text[-1]) and _is_cjk(text[0]):
                space = False
            start = max(word.start, 0.0)
            tokens.append(_Token(start=start, end=max(word.end, start), text=text, space=space))
            starts_segment = False
    return tokens


def _words_from_text(segment: SpeechSegment) -> list[Word]:
    """Split a segment without word timestamps into words timed in proportion to their length.

    Words are what spaces separate; CJK text is split into characters (punctuation kept with the
    character before it).
    """
    units = text_units(segment.text)
    total = sum(len(unit.strip()) for unit in units)
    span = max(segment.end - segment.start, 0.0)
    words: list[Word] = []
    done = 0
    for unit in units:
        start = segment.start + span * done / total
        done += len(unit.strip())
        words.append(Word(start=start, end=segment.start + span * done / total, text=unit))
    return words


def timed_words(segment: SpeechSegment) -> list[Word]:
    """A segment's words: Whisper's timestamps, or its text split and timed in proportion to length."""
    return list(segment.words) if segment.words else _words_from_text(segment)


def text_units(text: str) -> list[str]:
    """The words of ``text`` (each with the whitespace before it); CJK text gives one per character."""
    return [unit for unit in _TEXT_UNIT.findall(text) if unit.strip()]


def _is_cjk(char: str) -> bool:
    return _CJK.match(char) is not None


def _final_mark(text: str) -> str:
    """The last character of a word, looking through closing quotes and brackets."""
    stripped = text.rstrip(_CLOSERS)
    return stripped[-1:] if stripped else ""


#: Titles and abbreviations whose full stop does not end a sentence ("Mr. Dashwood", "St. Louis").
ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "sr",
        "jr",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "mt",
        "ft",
        "gen",
        "col",
        "capt",
        "lt",
        "sgt",
        "rev",
        "hr",
        "herr",
        "frau",
        "mme",
        "mlle",
        "sra",
        "srta",
        "dra",
        "bzw",
        "usw",
        "z.b",
        "d.h",
    ]
)


def ends_sentence(word: str) -> bool:
    """Whether ``word`` ends a sentence (``. ? !`` and CJK marks; "Mr." and other abbreviations do not)."""
    word = word.strip()
    if _final_mark(word) not in SENTENCE_END:
        return False
    bare = word.rstrip(_CLOSERS).rstrip(".").lower()
    return not (word.rstrip(_CLOSERS).endswith(".") and bare in ABBREVIATIONS)


def ends_clause(word: str) -> bool:
    """Whether ``word`` ends with a clause mark (``, ; : —`` and CJK marks)."""
    return _final_mark(word.strip()) in CLAUSE_END


def _ends_sentence(token: _Token) -> bool:
    return ends_sentence(token.text)


def _ends_clause(token: _Token) -> bool:
    return ends_clause(token.text)


# --- cue split ------------------------------------------------------------------------------------


def _split_run(tokens: Sequence[_Token], rules: _Rules) -> list[list[_Token]]:
    """Split a run's tokens into cues with the cheapest total cost (dynamic programming).

    ``best[j]`` is the cheapest split of ``tokens[:j]``; every cue ``tokens[i:j+1]`` that fits is
    tried, growing ``j`` until the cue no longer fits (the fit only gets worse as it grows).
    """
    count = len(tokens)
    best = [0.0] + [math.inf] * count
    back = [0] * (count + 1)
    for first in range(count):
        if best[first] == math.inf:
            continue
        for last, cost in _cue_costs(tokens, first, rules):
            if best[first] + cost < best[last + 1]:
                best[last + 1] = best[first] + cost
                back[last + 1] = first
    cues: list[list[_Token]] = []
    end = count
    while end > 0:
        cues.append(list(tokens[back[end] : end]))
        end = back[end]
    return cues[::-1]


class _CueGrowth:
    """Measures of a cue grown one token at a time, so each longer cue is checked in O(1).

    The line fit uses greedy first-fit filling, which needs the fewest lines; a lone token always
    fits (an over-long word gets a line of its own).
    """

    def __init__(self, first: _Token, rules: _Rules) -> None:
        self.rules = rules
        self.start = first.start
        self.lines = 1
        self.width = self.chars = len(first.text)
        self.pause_cost = 0.0
        #: For each sentence end inside the cue: (width up to it, width of the text after it).
        self.sentence_splits: list[tuple[int, int]] = []

    def add(self, previous: _Token, token: _Token) -> bool:
        """Append ``token`` (``previous`` is the cue's last token); return False if it no longer fits."""
        gap = token.start - previous.end
        if gap > LONG_PAUSE:
            self.pause_cost += _PAUSE_COST_PER_SECOND * gap
        if _ends_sentence(previous):
            self.sentence_splits.append((self.chars, self.chars + int(token.space)))
        added = int(token.space) + len(token.text)
        self.chars += added
        if self.width + added <= self.rules.max_line_chars:
            self.width += added
        else:
            self.lines, self.width = self.lines + 1, len(token.text)
        return self.lines <= self.rules.max_lines and token.end - self.start <= self.rules.max_duration

    def cost(self, last: _Token, following: _Token | None) -> float:
        """The cost of ending the cue after ``last``, the next token of the run being ``following``."""
        underfill = 1 - min(self.chars, self.rules.capacity) / self.rules.capacity
        cost = _CUE_COST + self.pause_cost + _UNDERFILL_COST * underfill**2
        if self.lines > 1 and self.sentence_splits and not self._sentence_on_own_lines():
            cost += _SENTENCE_MIDLINE_COST
        if following is not None:
            cost += _break_cost(last, following.start - last.end)
            if self.sentence_splits and not _ends_sentence(last):
                cost += _SENTENCE_INSIDE_COST
        return cost

    def _sentence_on_own_lines(self) -> bool:
        """Whether some sentence end inside the cue can end its first line."""
        rest_room = self.rules.max_line_chars * (self.rules.max_lines - 1)
        return any(
            head <= self.rules.max_line_chars and self.chars - offset <= rest_room
            for head, offset in self.sentence_splits
        )


def _cue_costs(tokens: Sequence[_Token], first: int, rules: _Rules) -> Iterator[tuple[int, float]]:
    """Yield ``(last, cost)`` for each cue ``tokens[first:last+1]`` that fits the rules."""
    growth = _CueGrowth(tokens[first], rules)
    for last in range(first, len(tokens)):
        if last > first and not growth.add(tokens[last - 1], tokens[last]):
            return
        following = tokens[last + 1] if last + 1 < len(tokens) else None
        yield last, growth.cost(tokens[last], following)


def _break_cost(token: _Token, pause: float) -> float:
    """How bad it is to end a cue after ``token``, followed by ``pause`` seconds of silence."""
    long_pause = pause > LONG_PAUSE
    if _ends_sentence(token):
        return _BREAK_COST_SENTENCE
    if _ends_clause(token):
        return _BREAK_COST_CLAUSE_AND_PAUSE if long_pause else _BREAK_COST_CLAUSE
    return _BREAK_COST_PAUSE if long_pause else _BREAK_COST_ANYWHERE


# --- line layout ----------------------------------------------------------------------------------


def _draft(tokens: Sequence[_Token], rules: _Rules) -> _Draft:
    return _Draft(start=tokens[0].start, speech_end=max(t.end for t in tokens), text=_layout(tokens, rules))


def _join(tokens: Sequence[_Token]) -> str:
    return "".join((" " if token.space and index else "") + token.text for index, token in enumerate(tokens))


def _line_count(tokens: Sequence[_Token], max_line_chars: int) -> int:
    """The fewest lines the tokens fill, by greedy first-fit (an over-long word gets its own line)."""
    lines, width = 1, len(tokens[0].text)
    for token in tokens[1:]:
        joined = width + int(token.space) + len(token.text)
        if joined <= max_line_chars:
            width = joined
        else:
            lines, width = lines + 1, len(token.text)
    return lines


def _layout(tokens: Sequence[_Token], rules: _Rules) -> str:
    """Break a cue's tokens into the fewest lines they need, choosing the best-looking breaks."""
    count = _line_count(tokens, rules.max_line_chars)
    if count == 1:
        return _join(tokens)
    candidates = (
        [tokens[a:b] for a, b in itertools.pairwise((0, *cuts, len(tokens)))]
        for cuts in itertools.combinations(range(1, len(tokens)), count - 1)
    )
    fitting = (lines for lines in candidates if all(_fits(line, rules.max_line_chars) for line in lines))
    best = min(fitting, key=lambda lines: _layout_cost(lines, len(tokens)))
    return "\n".join(_join(line) for line in best)


def _fits(line: Sequence[_Token], max_line_chars: int) -> bool:
    return len(line) == 1 or len(_join(line)) <= max_line_chars


def _layout_cost(lines: Sequence[Sequence[_Token]], token_count: int) -> float:
    """Imbalance in characters, less bonuses for breaks after punctuation, plus lone-word penalties."""
    widths = [len(_join(line)) for line in lines]
    cost = float(max(widths) - min(widths))
    for line in lines[:-1]:
        if _ends_sentence(line[-1]):
            cost -= _LINE_BONUS_SENTENCE
        elif _ends_clause(line[-1]):
            cost -= _LINE_BONUS_CLAUSE
    if token_count > len(lines):
        cost += _LINE_COST_ORPHAN * sum(len(line) == 1 for line in lines)
    if widths[0] > widths[-1]:
        cost += _LINE_COST_TOP_HEAVY
    return cost


# --- timing ---------------------------------------------------------------------------------------


def _time_cues(drafts: Sequence[_Draft], rules: _Rules) -> list[Cue]:
    """Time the drafts in whole milliseconds (see "How cues are timed" in the module docstring).

    A cue starts at its first word, or ``frame_gap`` after the previous cue if the word timestamps
    overlap; it always lasts at least 1 ms, even when overlapping timestamps leave it no room.
    """
    starts = [round(draft.start * 1000) for draft in drafts]
    cues: list[Cue] = []
    previous_end = -math.inf
    for index, draft in enumerate(drafts):
        start = max(starts[index], previous_end + rules.gap_ms, 0)
        latest = start + rules.max_duration_ms
        limit = starts[index + 1] - rules.gap_ms if index + 1 < len(drafts) else math.inf
        reading_ms = math.ceil(len(draft.text.replace("\n", "")) * 1000 / rules.max_cps)
        wanted = max(round(draft.speech_end * 1000), start + rules.min_duration_ms, start + reading_ms)
        end = min(wanted, limit, latest)
        if limit - end < CLOSE_GAP * 1000:
            end = min(limit, latest)
        end = int(max(end, start + 1))
        cues.append(Cue(start=start / 1000, end=end / 1000, text=draft.text))
        previous_end = end
    return cues
