"""What recognition found in a file, kept so it is done once: the language runs and the words as
spoken, before any translation. A video's translated subtitles, and a later task on the same file,
start from it instead of recognising the speech again (the words carry the timing that translated
lines are laid over)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from vodscribe.engines.results import SpeechSegment, Word
from vodscribe.engines.whisper import Span
from vodscribe.speech.language_runs import LanguageRun

FORMAT = 1  # bump when the stored shape changes: older records are then not reused


@dataclass(frozen=True, slots=True)
class Recognized:
    """Each language run with its segments (Whisper's audio clock: 0 is the first audio sample)."""

    runs: tuple[tuple[LanguageRun, tuple[SpeechSegment, ...]], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "runs": [
                {
                    "start": run.span.start,
                    "end": run.span.end,
                    "language": run.language,
                    "speech_seconds": run.speech_seconds,
                    "confidence": run.confidence,
                    "segments": [
                        {**asdict(seg), "words": [asdict(w) for w in seg.words]} for seg in segments
                    ],
                }
                for run, segments in self.runs
            ],
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Recognized | None:
        """The record, or None when it was stored in another format."""
        if data.get("format") != FORMAT:
            return None
        runs = []
        for item in data["runs"]:
            run = LanguageRun(
                Span(item["start"], item["end"]),
                item["language"],
                item["speech_seconds"],
                confidence=item.get("confidence", 1.0),  # records from before it was kept
            )
            segments = tuple(
                SpeechSegment(**{**seg, "words": tuple(Word(**w) for w in seg["words"])})
                for seg in item["segments"]
            )
            runs.append((run, segments))
        return Recognized(tuple(runs))
