"""faster-whisper (CTranslate2) ASR backend.

One :class:`WhisperEngine` per process: loading costs about a second and 150 MB, so workers keep it
(see :func:`get_engine`). It runs int8 on CPU and float16 on CUDA unless told otherwise.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import ctranslate2
import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.transcribe import Segment, restore_speech_timestamps
from faster_whisper.vad import VadOptions, get_speech_timestamps

from vodscribe import metrics
from vodscribe.config import DEFAULT_ASR, AsrOptions, Settings
from vodscribe.engines import bundled_model
from vodscribe.engines.results import SpeechSegment, Word
from vodscribe.models.resolve import ref, weights
from vodscribe.models.store import ModelStore

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
Task = Literal["transcribe", "translate"]

#: VAD settings: shorter silences than faster-whisper's default (2 s) split speech, so a language
#: switch after a normal pause becomes its own chunk.
VAD = VadOptions(min_silence_duration_ms=300, speech_pad_ms=200)
#: Whisper's input window: a batched pipeline decodes clips of at most this many seconds.
CHUNK_SECONDS = 30.0
WINDOW_SAMPLES = int(CHUNK_SECONDS * SAMPLE_RATE)
#: Seconds of speech Whisper left undecoded that are decoded again (shorter is mostly breath or noise).
MISSED_SECONDS = 1.0
#: Batch size on CUDA when the setting says "auto" (faster-whisper's own default).
CUDA_BATCH_SIZE = 8


#: Encoder frames per second (Whisper's encoder halves the 100 mel frames a second).
ENCODER_FRAMES_PER_SECOND = 50
#: Speech shorter than this inside a window gets no language of its own from the window's encoding.
MIN_SLICE_SECONDS = 0.5

Probabilities = dict[str, float]
"""Language probabilities by Whisper code."""


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


@dataclass(frozen=True, slots=True)
class WindowLanguages:
    """Language ID of one encoded window: the whole window's, and each speech span's in it.

    A span's probabilities come from the window's own encoder output cut to the span's frames (one
    decoder step, no extra encoder pass): weaker than identifying the span alone, but enough to see
    that a span is *not* in the window's language (measured on the test clips: a span after a switch
    gave the previous language at most 0.16)."""

    window: Probabilities
    spans: tuple[tuple[Span, Probabilities], ...] = ()


def best(probabilities: Probabilities) -> tuple[str, float]:
    """The most probable language and its probability."""
    language = max(probabilities, key=lambda code: probabilities[code])
    return language, probabilities[language]


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def resolve_compute_type(compute_type: str, device: str) -> str:
    if compute_type != "auto":
        return compute_type
    return "float16" if device == "cuda" else "int8"


def resolve_batch_size(batch_size: int, device: str) -> int:
    """Clips decoded together; 0 is faster-whisper's sequential mode. "auto" (-1) batches on CUDA
    only: batching pays on a GPU, while on a CPU the sequential mode keeps the previous-text prompt
    (the batched mode drops it) and is the one measured against raw faster-whisper (bench/asr.py)."""
    if batch_size >= 0:
        return batch_size
    return CUDA_BATCH_SIZE if device == "cuda" else 0


@dataclass(frozen=True, slots=True)
class Decoding:
    """What one transcription asks of Whisper's decoding beyond the engine's settings."""

    prompt: str | None = None
    """Whisper's initial prompt: text the speech is taken to follow (names, spelling, style)."""
    temperature: float | None = None
    """The first sampling temperature; None or 0 keeps faster-whisper's fallback from 0."""
    hotwords: str | None = None
    """Terms to bias the decoding towards (a vocabulary), put before each window's prompt."""

    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.prompt:
            out["initial_prompt"] = self.prompt
        if self.hotwords:
            out["hotwords"] = self.hotwords
        if self.temperature:  # fall back upwards from it, as faster-whisper does from 0
            steps = round((1.0 - self.temperature) / 0.2)
            out["temperature"] = [round(self.temperature + 0.2 * i, 2) for i in range(max(0, steps) + 1)]
        return out


class WhisperEngine:
    """Whisper through faster-whisper: language ID, speech detection and timed transcription."""

    def __init__(
        self, weights: Path | None = None, options: AsrOptions = DEFAULT_ASR, models: Path | None = None
    ) -> None:
        """``weights``: a CTranslate2 Whisper folder, or None for the model shipped in packages,
        joined once into a folder under ``models`` (the models directory) and loaded from there, or
        from memory without ``models`` (:mod:`.bundled_model`)."""
        self.device = resolve_device(options.device)
        self.compute_type = resolve_compute_type(options.compute_type, self.device)
        self.beam_size = options.beam_size
        self.batch_size = resolve_batch_size(options.batch_size, self.device)
        files: dict[str, bytes] | None = None
        if weights is not None:
            if not (weights / "model.bin").is_file():
                raise FileNotFoundError(
                    f"ASR model directory {weights} has no model.bin (CTranslate2 format)"
                )
            source, self.name = str(weights), weights.name
        else:
            bundled = bundled_model.on_disk(models) if models is not None else None
            source, self.name = (str(bundled) if bundled else "whisper-base"), "whisper-base (bundled)"
            files = None if bundled else bundled_model.load_files()
        self.model = WhisperModel(
            source,
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=options.cpu_threads,
            files=files,
            local_files_only=True,  # never a hub: the bundled files, or a folder on this machine
        )
        self._batched = BatchedInferencePipeline(self.model)
        self._lock = threading.Lock()  # CTranslate2 models are not meant for concurrent generate calls
        self._encoded: ctranslate2.StorageView | None = None  # the window being decoded (_encoding)
        # The one window encoded ahead of its decoding (prime): its features, encoder output and
        # language ID; the ID stays with the output once decoding has taken it (for _screened).
        self._primed: tuple[np.ndarray, ctranslate2.StorageView, WindowLanguages] | None = None
        self._reused: tuple[ctranslate2.StorageView, WindowLanguages] | None = None
        self._asked = Decoding()  # what the transcription being run asked for (:meth:`asking`)

    @property
    def asked(self) -> Decoding:
        """What the transcription being run asked for (:meth:`asking`)."""
        return self._asked

    @contextmanager
    def asking(self, decoding: Decoding) -> Iterator[None]:
        """Decode with ``decoding`` (a request's prompt and temperature) until the block ends. The
        engine runs one transcription at a time (its callers hold a lock for it), so this is that
        transcription's own setting."""
        before, self._asked = self._asked, decoding
        try:
            yield
        finally:
            self._asked = before

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

    def identify(self, views: Sequence[np.ndarray]) -> Probabilities:
        """Mean language probabilities over several views of the same speech (each ≤ 30 s), encoded
        as one batch: more evidence than one view, whose answer can flip on the last digits of
        int8 arithmetic (different on AVX2 and AVX-512) when two languages are close."""
        features = np.stack([pad_or_trim(self.model.feature_extractor(v)) for v in views])
        with self._lock:
            encoded = self.model.encode(features)
            results = self.model.model.detect_language(encoded)
        total: Probabilities = {}
        for result in results:
            for token, p in result:
                code = str(token)[2:-2]
                total[code] = total.get(code, 0.0) + float(p) / len(views)
        return total

    def identify_spans(self, audio: np.ndarray, spans: Sequence[Span]) -> WindowLanguages:
        """Language ID of ``audio`` (≤ 30 s) and of each of ``spans`` (seconds into it) from one
        encoder pass."""
        features = pad_or_trim(self.model.feature_extractor(audio))
        with self._lock:
            encoded = self.model.encode(features)
            return self._window_languages(encoded, [(s, s) for s in spans])

    def prime(self, audio: np.ndarray, spans: Sequence[Span]) -> WindowLanguages | None:
        """Language ID of the speech that :meth:`transcribe` with the same ``audio`` and ``spans``
        will decode, and of each span's slice of it, from the very encoding that decoding then
        reuses instead of encoding its first window again: a short clip costs one encoder pass,
        where plain faster-whisper's own language detection costs two. None (nothing encoded) when
        the speech is longer than one window."""
        chunks = _sample_chunks(spans, len(audio))
        if not chunks or self.batch_size > 0 or sum(c["end"] - c["start"] for c in chunks) > WINDOW_SAMPLES:
            return None
        features = self.model.feature_extractor(_joined(audio, chunks))  # as transcribe computes them
        content = features.shape[-1] - 1
        if content > self.model.feature_extractor.nb_max_frames:
            return None
        first = pad_or_trim(features[:, :content])  # generate_segments' first window, exactly
        with self._lock:
            encoded = self.model.encode(first)
            languages = self._window_languages(encoded, _window_pairs(chunks, 0.0))
            self._primed = (first, encoded, languages)
            return languages

    def language_rank(self, language: str) -> int:
        """Whisper's order of its language tokens, which follows its training hours (English,
        Chinese, German, Spanish, Russian, ... first): the prior that breaks a tie between close
        languages the same way on every CPU."""
        token = self.model.hf_tokenizer.token_to_id(f"<|{language}|>")
        return int(token) if token is not None else 1 << 30

    def _window_languages(
        self, encoded: ctranslate2.StorageView, spans: Sequence[tuple[Span, Span]]
    ) -> WindowLanguages:
        """The window's language ID and, for each (span, frames) pair, the ID of the encoder output
        cut to ``frames`` (seconds into the window); ``span`` is how the result names it."""
        window = self._languages(encoded)
        sliced = [
            (span, frames)
            for span, frames in spans
            if frames.end - max(0.0, frames.start) >= MIN_SLICE_SECONDS and frames.start < CHUNK_SECONDS
        ]
        if not sliced:
            return WindowLanguages(dict(window))
        # Cut on the host: CTranslate2 slices no StorageView itself (the copy is 3 MB a window).
        host = np.asarray(encoded if encoded.device == "cpu" else encoded.to_device(ctranslate2.Device.cpu))
        found = []
        for span, frames in sliced:
            first = max(0, int(frames.start * ENCODER_FRAMES_PER_SECOND))
            last = min(host.shape[1], max(first + 1, int(frames.end * ENCODER_FRAMES_PER_SECOND)))
            # Given from the host, as faster-whisper gives its features: CTranslate2 moves an input
            # to the model's device (and GPU index) itself.
            part = ctranslate2.StorageView.from_array(np.ascontiguousarray(host[:, first:last]))
            result = self.model.model.detect_language(part)[0]
            found.append((span, {str(token)[2:-2]: float(p) for token, p in result}))
        return WindowLanguages(dict(window), tuple(found))

    # --- transcription ---------------------------------------------------------------------------------
    def transcribe(
        self,
        audio: np.ndarray,
        *,
        language: str,
        task: Task = "transcribe",
        offset: float = 0.0,
        spans: Sequence[Span] | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_window: Callable[[WindowLanguages], None] | None = None,
    ) -> Generator[SpeechSegment]:
        """Lazily yield segments of ``audio`` (one language) with absolute word timings.

        ``on_window`` (sequential mode, with ``spans``) receives the language ID of each 30 s window
        Whisper encodes, and of each span in it (seconds into ``audio``), before that window's
        segments are yielded: language ID from the encoder pass the transcription makes anyway, a
        decoder step a span instead of another encoder pass.

        ``spans`` (seconds into ``audio``) are where the speech is, as :meth:`speech_spans` found it:
        only they are decoded, joined end to end as faster-whisper's own VAD filter joins them, and
        the times are mapped back. Passing them avoids a second VAD pass over the same audio; None
        decodes all of ``audio``.
        """
        chunks = _sample_chunks(spans, len(audio)) if spans is not None else None
        if chunks is not None and not chunks:
            return
        speech = audio if chunks is None else _joined(audio, chunks)
        watching = on_window if self.batch_size == 0 and chunks is not None else None
        with self._lock, self._encoding(watching is not None):
            segments = self._decode(speech, language, task)
            if chunks is not None:
                if watching is not None:
                    segments = self._screened(segments, chunks, watching)
                segments = self._recovering(
                    restore_speech_timestamps(segments, chunks, SAMPLE_RATE), audio, chunks, language, task
                )
            for seg in segments:
                if should_stop is not None and should_stop():
                    raise EngineStopped
                if _is_hallucination(seg.no_speech_prob, seg.avg_logprob, seg.text):
                    continue
                # float(): times mapped back by faster-whisper come as numpy scalars.
                words = tuple(
                    Word(offset + float(w.start), offset + float(w.end), w.word, float(w.probability))
                    for w in (seg.words or ())
                )
                yield SpeechSegment(
                    start=offset + float(seg.start),
                    end=offset + float(seg.end),
                    text=seg.text.strip(),
                    language=language if task == "transcribe" else "en",
                    words=words,
                    avg_logprob=seg.avg_logprob,
                    no_speech_prob=seg.no_speech_prob,
                    compression_ratio=seg.compression_ratio,
                )

    def _recovering(
        self,
        segments: Iterable[Segment],
        audio: np.ndarray,
        chunks: Sequence[dict[str, int]],
        language: str,
        task: Task,
    ) -> Iterator[Segment]:
        """``segments`` of the joined speech (times already mapped back into ``audio``), with the
        speech Whisper skipped decoded again.

        Whisper sometimes ends a window with end-of-text while speech is left in it, and that
        speech is then never decoded: on a joined window of 19 s of one speaker followed by a 3 s
        sentence of another, the sentence was lost in 2 of 18 variants of the noise around them
        (faster-whisper's own ``vad_filter`` joins speech the same way). Speech spans that no
        segment reached, at least :data:`MISSED_SECONDS` of them, are decoded again on their own,
        and come in time order, before the first segment after them."""
        waiting = [Span(c["start"] / SAMPLE_RATE, c["end"] / SAMPLE_RATE) for c in chunks]
        for seg in segments:
            start = float(seg.start)
            yield from self._decode_again([s for s in waiting if s.end <= start], audio, language, task)
            reached = [(float(w.start), float(w.end)) for w in seg.words or ()] or [(start, float(seg.end))]
            waiting = [
                s for s in waiting if s.end > start and not any(a < s.end and b > s.start for a, b in reached)
            ]
            yield seg
        yield from self._decode_again(waiting, audio, language, task)

    def _decode_again(
        self, missed: Sequence[Span], audio: np.ndarray, language: str, task: Task
    ) -> Iterator[Segment]:
        for group in merge_spans(missed):
            if sum(s.duration for s in group) < MISSED_SECONDS:
                continue
            chunks = _sample_chunks(group, len(audio))
            alone = _joined(audio, chunks)
            yield from restore_speech_timestamps(self._decode(alone, language, task), chunks, SAMPLE_RATE)

    def _screened(
        self,
        segments: Iterable[Segment],
        chunks: Sequence[dict[str, int]],
        on_window: Callable[[WindowLanguages], None],
    ) -> Iterator[Segment]:
        """``segments`` of the joined speech, with ``on_window`` told the language ID of each new
        window (and of each chunk in it, as a span of the original audio) before its first segment.

        A segment's ``seek`` is where its window starts in the joined speech; the window's encoder
        output is the last one :meth:`_encoding` kept, as faster-whisper encodes a window and then
        yields its segments."""
        seen: int | None = None
        for seg in segments:
            if seg.seek != seen and self._encoded is not None:
                seen = seg.seek
                reused = self._reused
                if reused is not None and reused[0] is self._encoded:  # prime identified it already
                    on_window(reused[1])
                else:  # seek is in mel frames: 100 a second
                    on_window(self._window_languages(self._encoded, _window_pairs(chunks, seg.seek / 100.0)))
            yield seg

    @contextmanager
    def _encoding(self, watch: bool) -> Iterator[None]:
        """While decoding: a window whose features are those :meth:`prime` encoded takes that
        output instead of a second pass (once); with ``watch``, the last encoder output is kept
        (for :meth:`_screened`)."""
        if not watch and self._primed is None:
            yield
            return
        encode = self.model.encode

        def watched(features: np.ndarray) -> ctranslate2.StorageView:
            primed = self._primed
            if primed is not None and np.array_equal(primed[0], features):
                self._primed, self._reused = None, (primed[1], primed[2])
                output = primed[1]
            else:
                output = encode(features)
            if watch:
                self._encoded = output
            return output

        self.model.encode = watched
        try:
            yield
        finally:
            del self.model.encode  # the class's method again
            # A primed window is meant for this transcription only: it goes, used or not.
            self._encoded = self._reused = self._primed = None

    def _languages(self, encoded: ctranslate2.StorageView) -> list[tuple[str, float]]:
        results = self.model.model.detect_language(encoded)[0]
        return [(str(token)[2:-2], float(p)) for token, p in results]

    def _decode(self, speech: np.ndarray, language: str, task: Task) -> Iterable[Segment]:
        """Whisper over speech already cut to its spans: sequential, or batched in 30 s clips."""
        common = {
            "language": language,
            "task": task,
            "beam_size": self.beam_size,
            "word_timestamps": True,
            "vad_filter": False,  # the speech is already cut to the VAD spans
            **self._asked.options(),
        }
        segments: Iterable[Segment]
        if self.batch_size > 0:
            segments, _ = self._batched.transcribe(
                speech,
                clip_timestamps=_clips(len(speech) / SAMPLE_RATE),
                batch_size=self.batch_size,
                **common,
            )
            return segments
        segments, _ = self.model.transcribe(
            speech,
            # As raw faster-whisper does: within one language run the text before is the best prompt
            # (measured: 0.046 WER on en/long_en_concat.wav against 0.067 without it).
            condition_on_previous_text=True,
            hallucination_silence_threshold=2.0,
            **common,
        )
        return segments


def _sample_chunks(spans: Sequence[Span], length: int) -> list[dict[str, int]]:
    """``spans`` as faster-whisper's speech chunks: sample offsets, clamped, empty ones dropped."""
    chunks = []
    for span in spans:
        start = max(0, int(span.start * SAMPLE_RATE))
        end = min(length, int(span.end * SAMPLE_RATE))
        if end > start:
            chunks.append({"start": start, "end": end})
    return chunks


def _joined(audio: np.ndarray, chunks: Sequence[dict[str, int]]) -> np.ndarray:
    """The speech of ``chunks`` end to end, as faster-whisper's own VAD filter joins it."""
    return np.concatenate([audio[c["start"] : c["end"]] for c in chunks])


def _window_pairs(chunks: Sequence[dict[str, int]], start: float) -> list[tuple[Span, Span]]:
    """The chunks in the window that starts ``start`` seconds into their joined speech: each as a
    span of the original audio and as a span of the window (seconds into it)."""
    joined = np.cumsum([0] + [c["end"] - c["start"] for c in chunks]) / SAMPLE_RATE
    return [
        (
            Span(c["start"] / SAMPLE_RATE, c["end"] / SAMPLE_RATE),
            Span(joined[i] - start, joined[i + 1] - start),
        )
        for i, c in enumerate(chunks)
        if joined[i + 1] > start and joined[i] < start + CHUNK_SECONDS
    ]


def _clips(seconds: float) -> list[dict[str, float]]:
    """Joined speech of ``seconds`` cut into Whisper windows for the batched pipeline (which reads
    only the first 30 s of a longer clip)."""
    count = max(1, math.ceil(seconds / CHUNK_SECONDS))
    return [{"start": i * CHUNK_SECONDS, "end": min(seconds, (i + 1) * CHUNK_SECONDS)} for i in range(count)]


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
    weights: Path | None = None, options: AsrOptions = DEFAULT_ASR, models: Path | None = None
) -> WhisperEngine:
    """The process-wide engine for these weights and options, loaded on first use (``models``: see
    :class:`WhisperEngine`)."""
    log.info("loading ASR model %s on %s", weights or "whisper-base (bundled)", options.device)
    started = time.monotonic()
    engine = WhisperEngine(weights, options, models)
    metrics.MODEL_LOAD.labels(engine.name, engine.device).observe(time.monotonic() - started)
    return engine


def engine_for(settings: Settings, options: AsrOptions | None = None) -> WhisperEngine:
    """The process-wide engine configured by ``settings`` (``options`` instead of its ASR options if
    given); a model named by the catalogue is checked against its lock file before it loads
    (:func:`vodscribe.models.resolve.load_path`)."""
    asr = ref("asr", settings.asr_model)
    return get_engine(
        weights(asr, ModelStore(settings.models_path)), options or settings.asr, settings.models_path
    )
