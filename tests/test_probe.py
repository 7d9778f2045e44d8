"""vodscribe.media.probe: signatures, probing and audio decoding of real and generated media."""

from __future__ import annotations

import random
import subprocess
import wave
from collections.abc import Callable
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import pytest

from vodscribe.errors import Cancelled, CorruptMediaError, NoAudioError, NotMediaError
from vodscribe.media.probe import (
    SNIFF_BYTES,
    MediaKind,
    decode_audio,
    ffmpeg_format,
    not_media_error,
    probe,
    require_audio,
    sniff,
)

DATA = Path(__file__).parent / "data"

# Real files (tests/data/README.md): kind, duration in seconds, has_video.
# Durations: the MP4's AAC track holds 386048 samples at 16 kHz; the MP3 is 59.9 s (2.4M samples at
# 24 kHz after the encoder delay); the FLAC's STREAMINFO says 45910 samples at 48 kHz; the AIFF's COMM
# chunk 111695 frames at 44.1 kHz; the WAV is checked against the `wave` module below.
REAL = {
    "jfk_librivox.mp4": (MediaKind.MP4, 24.128, True),
    "ldc93s1.wav": (MediaKind.WAV, 2.9248125, False),
    "sr_french.aiff": (MediaKind.AIFF, 111695 / 44100, False),
    "multilingual_en_de.mp3": (MediaKind.MP3, 59.9, False),
    "sr_chinese.flac": (MediaKind.FLAC, 45910 / 48000, False),
}

_TESTSRC = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1"]
_SINE = ["-f", "lavfi", "-i", "sine=frequency=440:duration=1:sample_rate=16000"]
# Generated containers: name -> (ffmpeg arguments, kind, has_video).
GENERATED: dict[str, tuple[list[str], MediaKind, bool]] = {
    "clip.mkv": ([*_TESTSRC, *_SINE, "-c:v", "libx264", "-c:a", "aac"], MediaKind.MATROSKA, True),
    "clip.webm": ([*_TESTSRC, *_SINE, "-c:v", "libvpx", "-c:a", "libopus"], MediaKind.MATROSKA, True),
    "clip.avi": ([*_TESTSRC, *_SINE, "-c:v", "mpeg4", "-c:a", "libmp3lame"], MediaKind.AVI, True),
    "clip.mov": ([*_TESTSRC, *_SINE, "-c:v", "libx264", "-c:a", "aac"], MediaKind.MP4, True),
    "clip.3gp": ([*_TESTSRC, *_SINE, "-c:v", "libx264", "-c:a", "aac"], MediaKind.MP4, True),
    "clip.ts": ([*_TESTSRC, *_SINE, "-c:v", "libx264", "-c:a", "aac"], MediaKind.MPEGTS, True),
    "clip.mpg": (
        [*_TESTSRC, *_SINE, "-c:v", "mpeg1video", "-c:a", "mp2", "-f", "mpeg"],
        MediaKind.MPEGPS,
        True,
    ),
    "clip.flv": (
        [*_TESTSRC, *_SINE, "-c:v", "flv", "-c:a", "libmp3lame", "-ar", "22050"],
        MediaKind.FLV,
        True,
    ),
    "clip.m4a": ([*_SINE, "-c:a", "aac"], MediaKind.MP4, False),
    "clip.ogg": ([*_SINE, "-c:a", "libvorbis"], MediaKind.OGG, False),
    "clip.aac": ([*_SINE, "-c:a", "aac", "-f", "adts"], MediaKind.AAC, False),
    "clip.mp3": (
        [*_SINE, "-c:a", "libmp3lame", "-id3v2_version", "0", "-write_xing", "0"],
        MediaKind.MP3,
        False,
    ),
    "stereo.wav": ([*_SINE, "-ac", "2", "-ar", "44100"], MediaKind.WAV, False),
}


def _ffmpeg(out: Path, *args: str) -> Path:
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run([*cmd, *args, str(out)], check=True, timeout=60)
    return out


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def generated(media_dir: Path) -> Callable[[str], Path]:
    """Make a GENERATED file on first use."""

    def make(name: str) -> Path:
        out = media_dir / name
        if not out.exists():
            _ffmpeg(out, *GENERATED[name][0])
        return out

    return make


@pytest.fixture(scope="module")
def no_audio_video(media_dir: Path) -> Path:
    """2 s of video, no audio track."""
    args = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=2", "-c:v", "libx264"]
    return _ffmpeg(media_dir / "noaudio.mp4", *args, "-pix_fmt", "yuv420p")


@pytest.fixture(scope="module")
def late_audio_video(media_dir: Path) -> Path:
    """4 s of video; 2 s of audio that starts 1.5 s after the video."""
    args = [
        *["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=4"],
        *["-itsoffset", "1.5", "-f", "lavfi", "-i", "sine=frequency=440:duration=2:sample_rate=44100"],
        *["-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"],
    ]
    return _ffmpeg(media_dir / "late.mp4", *args)


def _head(path: Path) -> bytes:
    return path.read_bytes()[:SNIFF_BYTES]


# --- sniff ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REAL)
def test_sniff_real_files(name: str) -> None:
    assert sniff(_head(DATA / name)) is REAL[name][0]


@pytest.mark.parametrize("name", GENERATED)
def test_sniff_generated_files(generated: Callable[[str], Path], name: str) -> None:
    assert sniff(_head(generated(name))) is GENERATED[name][1]


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x00\x00\x00\x08wide\x00\x10\x00\x00mdat" + b"\x00" * 64, MediaKind.MP4),  # old QuickTime
        (b"\x00\x00\x01\x00moov" + b"\x00\x01" * 64, MediaKind.MP4),
        (b"RF64\xff\xff\xff\xffWAVEds64", MediaKind.WAV),
        (b"FORM\x00\x01\x00\x00AIFCFVER", MediaKind.AIFF),
        (b"\xff\xf1\x50\x80\x02\x1f\xfc" + b"\x00" * 32, MediaKind.AAC),  # ADTS, no CRC
        (b"\xff\xf9\x50\x80\x02\x1f\xfc" + b"\x00" * 32, MediaKind.AAC),  # MPEG-2 ADTS
        (b"\xff\xfb\x90\x64" + b"\x00" * 32, MediaKind.MP3),  # MPEG-1 layer III frame
        (b"ID3\x04\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10 + b"\xff\xfb\x90\x64", MediaKind.MP3),
        (b"ID3\x04\x00\x00\x00\x00\x00\x02\x00\x00fLaC\x00\x00\x00\x22", MediaKind.FLAC),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xf1\x50\x80\x02\x1f\xfc", MediaKind.AAC),
        ((b"\x00\x00\x00\x00G" + b"\x01" * 187) * 3, MediaKind.MPEGTS),  # M2TS: 192-byte packets
        (b"\x00\x00\x01\xba\x44\x00", MediaKind.MPEGPS),
    ],
)
def test_sniff_signatures(head: bytes, kind: MediaKind) -> None:
    assert sniff(head) is kind


NOT_MEDIA = {
    "html": b"<!DOCTYPE html><html><head><title>YouTube</title></head><body></body></html>",
    "html-bom-lowercase": b"\xef\xbb\xbf\n  <html lang='en'><body>",
    "hls": b"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:10,\nhttp://169.254.169.254/\n",
    "dash": b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">',
    "json": b'{"url": "https://example.com/video.mp4"}',
    "text-with-free-box-shape": b"The free software movement " * 20,
    "text-starting-with-G": (b"G" + b"a" * 187) * 3,
    "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 30,
    "gzip": b"\x1f\x8b\x08\x00" + b"\x00" * 30,
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
    "avif": b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1",
    "webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "zeros": b"\x00" * SNIFF_BYTES,
    "empty": b"",
}


@pytest.mark.parametrize("name", NOT_MEDIA)
def test_sniff_refuses_non_media(name: str) -> None:
    assert sniff(NOT_MEDIA[name]) is None


_TEXT_KINDS = ("an HTML page", "an HLS playlist", "a DASH manifest", "an XML document", "a JSON document",
               "a text file")  # fmt: skip


def _named_as_text(head: bytes) -> bool:
    """Whether the not-media error for ``head`` calls it a text document (HTML, playlist, JSON...)."""
    return any(kind in not_media_error(head).message for kind in _TEXT_KINDS)


@pytest.mark.parametrize(
    "name", ["html", "html-bom-lowercase", "hls", "dash", "json", "text-with-free-box-shape"]
)
def test_looks_like_html_or_text(name: str) -> None:
    assert _named_as_text(NOT_MEDIA[name])


@pytest.mark.parametrize("name", ["zip", "png", "zeros", "empty"])
def test_binary_is_not_text(name: str) -> None:
    assert not _named_as_text(NOT_MEDIA[name])


@pytest.mark.parametrize("name", REAL)
def test_media_is_not_text(name: str) -> None:
    assert not _named_as_text(_head(DATA / name))


@pytest.mark.parametrize("kind", list(MediaKind))
def test_ffmpeg_format_names_a_real_demuxer(kind: MediaKind) -> None:
    assert av.format.ContainerFormat(ffmpeg_format(kind), "r").name


def test_ffmpeg_formats() -> None:
    assert ffmpeg_format(MediaKind.MP4) == "mov"
    assert ffmpeg_format(MediaKind.MATROSKA) == "matroska"
    assert ffmpeg_format(MediaKind.MPEGPS) == "mpeg"
    assert ffmpeg_format(MediaKind.AAC) == "aac"


# --- probe ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REAL)
def test_probe_real_files(name: str) -> None:
    kind, duration, has_video = REAL[name]
    info = probe(DATA / name)
    assert info.kind is kind
    assert info.duration == pytest.approx(duration, abs=0.1)
    assert info.has_audio
    assert info.has_video is has_video
    assert info.audio_start == pytest.approx(0.0, abs=0.05)
    assert info.sample_rate and info.channels and info.audio_codec


def test_wav_duration_matches_header() -> None:
    with wave.open(str(DATA / "ldc93s1.wav")) as w:
        true = w.getnframes() / w.getframerate()
    assert probe(DATA / "ldc93s1.wav").duration == pytest.approx(true, abs=0.001)


def test_probe_mp4_details() -> None:
    info = probe(DATA / "jfk_librivox.mp4")
    assert (info.width, info.height) == (320, 240)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.sample_rate, info.channels) == (16000, 1)


@pytest.mark.parametrize("name", GENERATED)
def test_probe_generated_files(generated: Callable[[str], Path], name: str) -> None:
    _, kind, has_video = GENERATED[name]
    info = probe(generated(name))
    assert info.kind is kind
    assert info.has_audio
    assert info.has_video is has_video
    assert info.duration == pytest.approx(1.0, abs=0.15)


def test_probe_video_without_audio(no_audio_video: Path) -> None:
    info = probe(no_audio_video)
    assert info.has_video
    assert not info.has_audio
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert (info.audio_start, info.audio_codec, info.sample_rate) == (0.0, None, None)
    with pytest.raises(NoAudioError, match=r"^The file has no audio track\.$"):
        require_audio(info)
    with pytest.raises(NoAudioError):
        decode_audio(no_audio_video, info)


def test_probe_late_audio(late_audio_video: Path) -> None:
    info = probe(late_audio_video)
    assert info.has_audio and info.has_video
    assert info.audio_start == pytest.approx(1.5, abs=0.05)
    assert info.duration == pytest.approx(4.0, abs=0.1)


def test_truncated_mp4_is_corrupt(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes((DATA / "jfk_librivox.mp4").read_bytes()[:100_000])  # the moov atom is lost
    with pytest.raises(CorruptMediaError, match="damaged or incomplete"):
        probe(truncated)


def _garbage(n: int) -> bytes:
    return random.Random(0).randbytes(n)


def test_mp4_with_damaged_media_data_is_corrupt(tmp_path: Path) -> None:
    data = bytearray((DATA / "jfk_librivox.mp4").read_bytes())
    data[2000:190_000] = _garbage(188_000)  # inside `mdat` (40..198154); `moov` at the end is intact
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    with pytest.raises(CorruptMediaError):
        probe(damaged)


def test_mp3_with_damaged_audio_is_corrupt(tmp_path: Path) -> None:
    data = bytearray((DATA / "multilingual_en_de.mp3").read_bytes())
    data[4096:] = _garbage(len(data) - 4096)  # the first frames decode, the rest is noise
    damaged = tmp_path / "damaged.mp3"
    damaged.write_bytes(bytes(data))
    info = probe(damaged)
    with pytest.raises(CorruptMediaError, match="damaged"):
        decode_audio(damaged, info)


def test_hls_playlist_named_mp4_is_not_media(tmp_path: Path) -> None:
    playlist = tmp_path / "video.mp4"
    playlist.write_bytes(NOT_MEDIA["hls"])
    with pytest.raises(NotMediaError, match="HLS playlist"):
        probe(playlist)


def test_html_named_mp4_is_not_media(tmp_path: Path) -> None:
    page = tmp_path / "video.mp4"
    page.write_bytes(NOT_MEDIA["html"])
    with pytest.raises(NotMediaError, match="HTML page"):
        probe(page)


def test_playlist_behind_a_fake_mp4_header_is_never_read_as_a_playlist(tmp_path: Path) -> None:
    # Sniffs as MP4, so the mov demuxer is forced: it fails instead of following the playlist.
    disguised = tmp_path / "video.mp4"
    disguised.write_bytes(b"\x00\x00\x00\x10ftypisom\x00\x00\x02\x00" + NOT_MEDIA["hls"])
    with pytest.raises(CorruptMediaError):
        probe(disguised)


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(NotMediaError, match="empty"):
        probe(empty)


def test_pyav_honours_protocol_whitelist() -> None:
    # probe/decode open files with protocol_whitelist=file: prove PyAV passes the option to ffmpeg.
    with pytest.raises(av.FFmpegError):
        av.open(str(DATA / "ldc93s1.wav"), format="wav", options={"protocol_whitelist": "http"})
    with av.open(str(DATA / "ldc93s1.wav"), format="wav", options={"protocol_whitelist": "file"}) as c:
        assert c.streams.audio


# --- decode_audio ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REAL)
def test_decode_audio_real_files(name: str) -> None:
    info = probe(DATA / name)
    audio = decode_audio(DATA / name, info)
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert len(audio) / 16000 == pytest.approx(info.duration, abs=0.1)
    assert 0.01 < float(np.abs(audio).max()) <= 1.0


def test_decode_audio_exact_length_for_16k_wav() -> None:
    with wave.open(str(DATA / "ldc93s1.wav")) as w:
        frames = w.getnframes()
    audio = decode_audio(DATA / "ldc93s1.wav", probe(DATA / "ldc93s1.wav"))
    assert len(audio) == frames


def test_decode_audio_stereo_44k_to_mono_16k(generated: Callable[[str], Path]) -> None:
    path = generated("stereo.wav")
    audio = decode_audio(path, probe(path))
    assert audio.shape == (16000,)
    assert audio.dtype == np.float32


def test_decode_audio_other_rate(generated: Callable[[str], Path]) -> None:
    path = generated("clip.ogg")
    assert len(decode_audio(path, probe(path), sampling_rate=8000)) == pytest.approx(8000, abs=100)


def test_decode_audio_late_audio(late_audio_video: Path) -> None:
    audio = decode_audio(late_audio_video, probe(late_audio_video))
    assert len(audio) / 16000 == pytest.approx(2.0, abs=0.1)  # the audio track only, from its start


def test_decode_audio_cancelled() -> None:
    info = probe(DATA / "multilingual_en_de.mp3")
    with pytest.raises(Cancelled):
        decode_audio(DATA / "multilingual_en_de.mp3", info, should_stop=lambda: True)
