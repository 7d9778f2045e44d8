"""Recognise, probe and decode media files in-process with PyAV.

Safety rule (docs/design.md, "Media"): a file is identified by its magic bytes, never its name, and
opened with that format forced and only the ``file`` protocol allowed. A file named ``.mp4``
can be an HLS playlist whose segments are ``file:///etc/passwd`` or ``http://169.254.169.254/``;
sniffing refuses it, and even if it got through, the forced demuxer would not read it as a
playlist and the protocol whitelist would refuse any URL inside it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

import av
import av.container
import numpy as np

from vodscribe.errors import (
    Cancelled,
    CorruptMediaError,
    NoAudioError,
    NotMediaError,
    too_long,
)
from vodscribe.media.stop_check import StopCheck

#: How many leading bytes :func:`sniff` wants to see (an MPEG-TS check needs bytes 0, 188 and 376).
SNIFF_BYTES = 512

#: Undecodable audio packets tolerated by :func:`decode_audio` before the file is called corrupt
#: (ffmpeg itself conceals isolated bad packets; a stream that is mostly garbage is not usable).
_MAX_BAD_PACKETS = 16

#: protocol_whitelist is an AVFormatContext option, honoured by PyAV's ``options=``: with it set to
#: "http", opening a local file fails with EINVAL (tests/test_probe.py pins this).
_OPEN_OPTIONS = {"protocol_whitelist": "file"}

_HTML_MESSAGE = (
    "The URL points to an HTML page, not a media file (a YouTube or web page link?); "
    "give a direct link to an MP4 file."
)


class MediaKind(StrEnum):
    """A container format, as recognised from its signature."""

    MP4 = "mp4"  # ISO BMFF: MP4, MOV, M4A, 3GP
    MATROSKA = "matroska"  # MKV and WebM
    AVI = "avi"
    WAV = "wav"
    MP3 = "mp3"
    FLAC = "flac"
    OGG = "ogg"
    AIFF = "aiff"
    AAC = "aac"  # ADTS
    MPEGTS = "mpegts"
    MPEGPS = "mpegps"
    FLV = "flv"


_FFMPEG_FORMATS: dict[MediaKind, str] = {
    MediaKind.MP4: "mov",
    MediaKind.MATROSKA: "matroska",
    MediaKind.AVI: "avi",
    MediaKind.WAV: "wav",
    MediaKind.MP3: "mp3",
    MediaKind.FLAC: "flac",
    MediaKind.OGG: "ogg",
    MediaKind.AIFF: "aiff",
    MediaKind.AAC: "aac",
    MediaKind.MPEGTS: "mpegts",
    MediaKind.MPEGPS: "mpeg",
    MediaKind.FLV: "flv",
}

# Boxes a QuickTime/MP4 file may start with instead of `ftyp`.
_BMFF_LEADING_BOXES = frozenset({b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"})
# `ftyp` major brands of still-image formats built on ISO BMFF (HEIF/HEIC, AVIF, Canon raw).
_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis", b"crx "}
)
_SIMPLE_SIGNATURES: tuple[tuple[bytes, MediaKind], ...] = (
    (b"\x1a\x45\xdf\xa3", MediaKind.MATROSKA),
    (b"fLaC", MediaKind.FLAC),
    (b"OggS", MediaKind.OGG),
    (b"\x00\x00\x01\xba", MediaKind.MPEGPS),
    (b"FLV\x01", MediaKind.FLV),
)
_TEXT_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


# --- sniffing -------------------------------------------------------------------------------------


def sniff(head: bytes) -> MediaKind | None:
    """Recognise a media container from the first bytes of a file (ideally :data:`SNIFF_BYTES`).

    Returns None for anything else, including HTML, playlists, archives, documents and images.
    """
    if head.startswith(b"ID3"):
        return _sniff_after_id3(head)
    for signature, kind in _SIMPLE_SIGNATURES:
        if head.startswith(signature):
            return kind
    return _sniff_chunked(head) or _sniff_frames(head)


def _sniff_chunked(head: bytes) -> MediaKind | None:
    """RIFF/AIFF chunk files and ISO BMFF boxes."""
    tag, form = head[:4], head[8:12]
    if tag in (b"RIFF", b"RF64", b"BW64") and form == b"WAVE":
        return MediaKind.WAV
    if tag == b"RIFF" and form == b"AVI ":
        return MediaKind.AVI
    if tag == b"FORM" and form in (b"AIFF", b"AIFC"):
        return MediaKind.AIFF
    box = head[4:8]
    if box == b"ftyp" and len(head) >= 12:
        return None if form in _IMAGE_BRANDS else MediaKind.MP4
    # A weak signature ("The free ..." has `free` at offset 4), so refuse anything that reads as text.
    if box in _BMFF_LEADING_BOXES and not _is_text(head):
        return MediaKind.MP4
    return None


def _sniff_frames(head: bytes) -> MediaKind | None:
    """Formats without a file header: ADTS AAC, MPEG audio, MPEG-TS (188-byte packets)."""
    if _is_adts(head):
        return MediaKind.AAC
    if _is_mpeg_audio(head):
        return MediaKind.MP3
    if _is_transport_stream(head, 0, 188) or _is_transport_stream(head, 4, 192):  # TS; M2TS (timecodes)
        return MediaKind.MPEGTS
    return None


def _sniff_after_id3(head: bytes) -> MediaKind:
    """An ID3v2 tag usually precedes MP3, sometimes AAC or FLAC; look past it when it fits."""
    if len(head) < 10:
        return MediaKind.MP3
    size = 10 + ((head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | head[9] & 0x7F)
    if head[5] & 0x10:  # footer present
        size += 10
    after = head[size:]
    if after.startswith(b"fLaC"):
        return MediaKind.FLAC
    return MediaKind.AAC if _is_adts(after) else MediaKind.MP3


def _is_adts(head: bytes) -> bool:
    # 12-bit sync, layer 00 (FF F1 / FF F9 without CRC, FF F0 / FF F8 with), valid sampling index.
    return len(head) >= 3 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0 and (head[2] >> 2) & 0xF < 13


def _is_mpeg_audio(head: bytes) -> bool:
    # 11-bit frame sync; version != reserved, layer != reserved, bitrate != bad, sample rate != reserved.
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate != 15 and rate != 3


def _is_transport_stream(head: bytes, offset: int, stride: int) -> bool:
    positions = range(offset, len(head), stride)
    return len(positions) >= 2 and all(head[i] == 0x47 for i in positions[:3]) and not _is_text(head)


def _is_text(head: bytes) -> bool:
    """Valid UTF-8 (allowing a character cut at the end) without control characters."""
    if not head or _TEXT_CONTROL.search(head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def _text_kind(head: bytes) -> str | None:
    """Describe a text document (for the error message), or None if ``head`` is not text."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if text.startswith(b"#extm3u"):
        return "an HLS playlist (.m3u8)"
    is_text = _is_text(head)
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or (is_text and b"<html" in text):
        return "an HTML page"
    if text.startswith(b"<"):
        return "a DASH manifest" if b"<mpd" in text else "an XML document"
    if not is_text:
        return None
    return "a JSON document" if text.startswith((b"{", b"[")) else "a text file"


def _binary_kind(head: bytes) -> str | None:
    """Describe a common non-media binary file, or None."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!", b"BZh")):
        return "an archive (ZIP, gzip, 7z, RAR...)"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    images = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"II*\x00", b"MM\x00*")
    if head.startswith(images) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "an image"
    if head[4:8] == b"ftyp" and head[8:12] in _IMAGE_BRANDS:
        return "an image"
    return None


def not_media_error(head: bytes, uploaded: bool = False) -> NotMediaError:
    """The error for content that :func:`sniff` did not recognise, naming what it looks like; about
    the file a client ``uploaded``, or else about the URL it gave."""
    if not head:
        return NotMediaError("The file is empty.")
    what = _text_kind(head) or _binary_kind(head)
    if what is not None and uploaded:
        return NotMediaError(f"The file is {what}, not a media file; upload a video file such as an MP4.")
    if what == "an HTML page":
        return NotMediaError(_HTML_MESSAGE)
    if what is not None:
        return NotMediaError(
            f"The URL points to {what}, not a media file; give a direct link to an MP4 file."
        )
    return NotMediaError(
        "The file is not in a recognised audio or video format (MP4, MOV, WebM, MKV, AVI, "
        "MPEG-TS, WAV, MP3, FLAC, OGG, AIFF or AAC)."
    )


def sniff_or_raise(head: bytes, uploaded: bool = False) -> MediaKind:
    """:func:`sniff`, raising :class:`NotMediaError` with a helpful message for non-media."""
    kind = sniff(head)
    if kind is None:
        raise not_media_error(head, uploaded)
    return kind


def ffmpeg_format(kind: MediaKind) -> str:
    """The ffmpeg demuxer to force for ``kind`` (``-f`` on the command line, ``format=`` in PyAV)."""
    return _FFMPEG_FORMATS[kind]


# --- probing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` learnt about a file. Times in seconds."""

    kind: MediaKind
    duration: float
    has_audio: bool
    has_video: bool
    audio_start: float  # first audio sample relative to the container start (0 without audio)
    width: int | None = None
    height: int | None = None
    audio_codec: str | None = None
    video_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None


def open_media(path: Path, kind: MediaKind) -> av.container.InputContainer:
    """Open a local file with the demuxer forced and only the ``file`` protocol allowed.

    The path is made absolute so that nothing in it can read as a protocol prefix (``foo:bar``).
    """
    return av.open(str(path.resolve()), mode="r", format=ffmpeg_format(kind), options=dict(_OPEN_OPTIONS))


def probe(path: Path) -> MediaInfo:
    """Identify and inspect a media file.

    Raises NotMediaError when the signature is not a media format, CorruptMediaError when the file
    cannot be demuxed or its audio cannot be decoded. A file without audio is not an error here:
    ``has_audio`` is False and :func:`require_audio` raises.
    """
    kind = sniff_or_raise(_read_head(path))
    try:
        with open_media(path, kind) as container:
            return _inspect(container, kind)
    except av.FFmpegError as exc:
        raise CorruptMediaError(
            f"The {kind.value.upper()} file is damaged or incomplete and cannot be read."
        ) from exc


def require_audio(info: MediaInfo) -> None:
    """Raise :class:`NoAudioError` unless the file has an audio track."""
    if not info.has_audio:
        raise NoAudioError()


def _read_head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(SNIFF_BYTES)


def _inspect(container: av.container.InputContainer, kind: MediaKind) -> MediaInfo:
    audio = container.streams.audio[0] if container.streams.audio else None
    video = _main_video(container)
    duration = _duration(container)
    if audio is not None:
        _check_audio_decodes(container, audio)
    return MediaInfo(
        kind=kind,
        duration=duration,
        has_audio=audio is not None,
        has_video=video is not None,
        audio_start=_audio_start(container, audio),
        width=video.codec_context.width if video is not None else None,
        height=video.codec_context.height if video is not None else None,
        audio_codec=audio.codec_context.codec.canonical_name if audio is not None else None,
        video_codec=video.codec_context.codec.canonical_name if video is not None else None,
        sample_rate=audio.codec_context.sample_rate if audio is not None else None,
        channels=audio.codec_context.channels if audio is not None else None,
    )


def _main_video(container: av.container.InputContainer) -> av.VideoStream | None:
    """The first real video stream; cover art in MP3/M4A files (an attached picture) is not video."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _duration(container: av.container.InputContainer) -> float:
    """Container duration, else the longest stream, else measured by demuxing (no decoding)."""
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    durations = [_seconds(s.duration, s.time_base) for s in container.streams]
    known = [d for d in durations if d]
    if known:
        return max(known)
    return _demuxed_duration(container)


def _demuxed_duration(container: av.container.InputContainer) -> float:
    start, end = None, 0.0
    for packet in container.demux():
        if packet.pts is None or packet.time_base is None:
            continue
        t = float(packet.pts * packet.time_base)
        start = t if start is None else min(start, t)
        end = max(end, t + float((packet.duration or 0) * packet.time_base))
    container.seek(0)
    return max(0.0, end - (start or 0.0))


def _audio_start(container: av.container.InputContainer, audio: av.AudioStream | None) -> float:
    """When the audio begins relative to the container start (e.g. 1.5 for audio muxed late)."""
    if audio is None:
        return 0.0
    start = _seconds(audio.start_time, audio.time_base)
    if start is None:
        return 0.0
    if container.start_time is not None:
        origin = container.start_time / av.time_base
    else:
        starts = (_seconds(s.start_time, s.time_base) for s in container.streams)
        origin = min((t for t in starts if t is not None), default=start)
    return max(0.0, start - origin)


def _check_audio_decodes(container: av.container.InputContainer, audio: av.AudioStream) -> None:
    """Decode until the first audio frame, so a corrupt or unsupported audio stream fails now."""
    if next(_audio_frames(container, audio), None) is None:
        raise CorruptMediaError("The audio track is damaged or empty and cannot be decoded.")


# --- decoding ---------------------------------------------------------------------------------------


def decode_audio(
    path: Path,
    info: MediaInfo,
    *,
    sampling_rate: int = 16000,
    max_seconds: float | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """The whole first audio track as mono float32 PCM at ``sampling_rate`` Hz (see
    :func:`stream_audio`; for long media prefer that, which holds one block at a time)."""
    blocks = stream_audio(
        path, info, sampling_rate=sampling_rate, max_seconds=max_seconds, should_stop=should_stop
    )
    return np.concatenate(list(blocks))


def stream_audio(
    path: Path,
    info: MediaInfo,
    *,
    sampling_rate: int = 16000,
    block_seconds: float = 30.0,
    max_seconds: float | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[np.ndarray]:
    """Decode the first audio track to mono float32 PCM at ``sampling_rate`` Hz, lazily, in blocks of
    ``block_seconds`` (the last one shorter), so memory does not grow with the duration.

    Sample 0 is the first audio sample, which plays at ``info.audio_start`` on the media timeline.
    Raises NoAudioError, CorruptMediaError, TooLongError past ``max_seconds`` (checked against the
    header first, then counted while decoding: a header can lie, and a small file can hold hours of
    silence), or Cancelled when ``should_stop()`` returns True (polled between frames, at most every
    0.25 s).
    """
    require_audio(info)
    check_duration(info, max_seconds)
    stop = StopCheck(should_stop, Cancelled)
    resampler = _Resampler(sampling_rate)
    block = _BlockBuilder(max(1, int(block_seconds * sampling_rate)))
    limit = math.inf if not max_seconds else max_seconds * sampling_rate
    try:
        with open_media(path, info.kind) as container:
            for frame in _audio_frames(container, container.streams.audio[0]):
                stop.check()
                yield from block.add(resampler.push(frame))
                if block.total > limit:
                    assert max_seconds
                    raise too_long(max_seconds)
        yield from block.add(resampler.flush())
    except av.FFmpegError as exc:
        raise CorruptMediaError("The audio track is damaged and cannot be decoded.") from exc
    if block.total == 0:
        raise CorruptMediaError("The audio track is damaged or empty and cannot be decoded.")
    yield from block.rest()


class _BlockBuilder:
    """Gathers decoded chunks into blocks of a fixed number of samples."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.total = 0
        self._chunks: list[np.ndarray] = []
        self._held = 0

    def add(self, chunks: list[np.ndarray]) -> Iterator[np.ndarray]:
        for chunk in chunks:
            self._chunks.append(chunk)
            self._held += len(chunk)
            self.total += len(chunk)
        while self._held >= self.size:
            joined = np.concatenate(self._chunks).astype(np.float32, copy=False)
            yield joined[: self.size]
            rest = joined[self.size :]
            self._chunks, self._held = ([rest] if len(rest) else []), len(rest)

    def rest(self) -> Iterator[np.ndarray]:
        if self._held:
            yield np.concatenate(self._chunks).astype(np.float32, copy=False)
            self._chunks, self._held = [], 0


def check_duration(info: MediaInfo, max_seconds: float | None) -> None:
    """Raise :class:`TooLongError` if the header says the media lasts longer than ``max_seconds``."""
    if max_seconds and info.duration > max_seconds:
        raise too_long(max_seconds, info.duration)


def _audio_frames(container: av.container.InputContainer, stream: av.AudioStream) -> Iterator[av.AudioFrame]:
    """Decoded frames of ``stream``, skipping a few undecodable packets as ffmpeg does."""
    bad = 0
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.InvalidDataError:
            bad += 1
            if bad > _MAX_BAD_PACKETS:
                raise
            continue
        yield from frames


class _Resampler:
    """PyAV's resampler, rebuilt when the input format changes mid-stream (it refuses that)."""

    def __init__(self, rate: int) -> None:
        self._rate = rate
        self._resampler: av.AudioResampler | None = None
        self._input: tuple[str, str, int] | None = None

    def push(self, frame: av.AudioFrame) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        signature = (frame.format.name, frame.layout.name, frame.sample_rate)
        if signature != self._input:
            out = self.flush()
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self._rate)
            self._input = signature
        assert self._resampler is not None
        return out + [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]

    def flush(self) -> list[np.ndarray]:
        if self._resampler is None:
            return []
        return [f.to_ndarray().reshape(-1) for f in self._resampler.resample(None)]
