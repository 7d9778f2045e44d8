"""faster-whisper (CTranslate2) ASR backend.

One :class:`WhisperEngine` per process: loading costs about a second and 150 MB, so workers keep it
(see :func:`get_engine`). It runs int8 on CPU and float16 on CUDA unless told otherwise.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.vad import VadOptions, get_speech_timestamps

from vodscribe.config import Settings
from vodscribe.engines import bundled_model
from vodscribe.engines.base import SpeechSegment, Word
from vodscribe.models.resolve import load_path, ref
from vodscribe.models.store import ModelStore

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
Task = Literal["transcribe", "translate"]

#: VAD settings: shorter silences than faster-whisper's default (2 s) split speech, so a language
#: switch after a normal pause becomes its own chunk.
VAD = VadOptions(min_silence_duration_ms=500, speech_pad_ms=200)


class EngineStopped(Exception):
    """Raised from inside a transcription when ``should_stop()`` turned true."""


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of audio in seconds."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def resolve_compute_type(compute_type: str, device: str) -> str:
    if compute_type != "auto":
        return compute_type
    return "float16" if device == "cuda" else "int8"


class WhisperEngine:
    """Whisper through faster-whisper: language ID, speech detection and timed transcription."""

    def __init__(
        self,
        model: str = "bundled",
        *,
        device: str = "auto",
        compute_type: str = "auto",
        cpu_threads: int = 0,
        beam_size: int = 5,
    ) -> None:
        self.device = resolve_device(device)
        self.compute_type = resolve_compute_type(compute_type, self.device)
        self.beam_size = beam_size
        if model == "bundled":
            files = bundled_model.load_files()
            self.model = WhisperModel(
                "whisper-base",
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=cpu_threads,
                files=files,
            )
            self.name = "whisper-base (bundled)"
        else:
            path = Path(model)
            if not (path / "model.bin").is_file():
                raise FileNotFoundError(f"ASR model directory {path} has no model.bin (CTranslate2 format)")
            self.model = WhisperModel(
                str(path),
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=cpu_threads,
                local_files_only=True,
            )
            self.name = path.name
        self._lock = threading.Lock()  # CTranslate2 models are not meant for concurrent generate calls

    # --- analysis ---------------------------------------------------------------------------------
    @staticmethod
    def speech_spans(audio: np.ndarray) -> list[Span]:
        """Silero VAD over the whole file: where someone speaks."""
        stamps = get_speech_timestamps(audio, VAD, sampling_rate=SAMPLE_RATE)
        return [Span(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]

    def detect_language(self, audio: np.ndarray) -> list[tuple[str, float]]:
        """Language probabilities (Whisper codes, best first) for the first 30 s of ``audio``."""
        with self._lock:
            _, _, probs = self.model.detect_language(audio)
        return [(str(code), float(p)) for code, p in probs]

    # --- transcription ----------------------------------------------------------------------------
    def transcribe(
        self,
        audio: np.ndarray,
        *,
        language: str,
        task: Task = "transcribe",
        offset: float = 0.0,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[SpeechSegment]:
        """Lazily yield segments of ``audio`` (one language) with absolute word timings."""
        with self._lock:
            segments, _ = self.model.transcribe(
                audio,
                language=language,
                task=task,
                beam_size=self.beam_size,
                word_timestamps=True,
                vad_filter=True,
                vad_parameters=VAD,
                condition_on_previous_text=False,
                hallucination_silence_threshold=2.0,
            )
            for seg in segments:
                if should_stop is not None and should_stop():
                    raise EngineStopped
                if _is_hallucination(seg.no_speech_prob, seg.avg_logprob, seg.text):
                    continue
                words = tuple(
                    Word(offset + w.start, offset + w.end, w.word, w.probability) for w in (seg.words or ())
                )
                yield SpeechSegment(
                    start=offset + seg.start,
                    end=offset + seg.end,
                    text=seg.text.strip(),
                    language=language if task == "transcribe" else "en",
                    words=words,
                    avg_logprob=seg.avg_logprob,
                    no_speech_prob=seg.no_speech_prob,
                    compression_ratio=seg.compression_ratio,
                )


def _is_hallucination(no_speech_prob: float, avg_logprob: float, text: str) -> bool:
    """Whisper's own silence rule, applied per yielded segment, plus empty text."""
    if not text.strip():
        return True
    return no_speech_prob > 0.6 and avg_logprob < -1.0


def slice_audio(audio: np.ndarray, span: Span) -> np.ndarray:
    return audio[int(span.start * SAMPLE_RATE) : int(span.end * SAMPLE_RATE)]


def merge_spans(spans: Sequence[Span], max_len: float = 30.0) -> list[list[Span]]:
    """Group consecutive speech spans into windows of at most ``max_len`` seconds of speech."""
    groups: list[list[Span]] = []
    current: list[Span] = []
    length = 0.0
    for span in spans:
        if current and length + span.duration > max_len:
            groups.append(current)
            current, length = [], 0.0
        current.append(span)
        length += span.duration
    if current:
        groups.append(current)
    return groups


@lru_cache(maxsize=4)
def get_engine(
    model: str = "bundled",
    device: str = "auto",
    compute_type: str = "auto",
    cpu_threads: int = 0,
    beam_size: int = 5,
) -> WhisperEngine:
    """The process-wide engine for these settings, loaded on first use."""
    log.info("loading ASR model %s on %s", model, device)
    return WhisperEngine(
        model, device=device, compute_type=compute_type, cpu_threads=cpu_threads, beam_size=beam_size
    )


def engine_for(settings: Settings) -> WhisperEngine:
    """The process-wide engine configured by ``settings``; a model named by the catalogue is
    checked against its lock file before it loads (:func:`vodscribe.models.resolve.load_path`)."""
    asr = ref("asr", settings.asr_model)
    model = settings.asr_model if asr.model is None else str(load_path(asr, ModelStore(settings.models_path)))
    return get_engine(
        model,
        settings.asr_device,
        settings.asr_compute_type,
        settings.asr_cpu_threads,
        settings.asr_beam_size,
    )
