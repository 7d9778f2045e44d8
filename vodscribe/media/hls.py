"""Package MP4 renditions as HLS and write the master playlist with subtitle tracks.

Layout of a video's HLS directory (every URI in a playlist is relative)::

    master.m3u8                  written here, in Python (ffmpeg alone duplicates subtitle playlists)
    vod240p.m3u8, vod240p_0000.ts ...   one media playlist + MPEG-TS segments per rendition (ffmpeg)
    subs/{key}.m3u8, subs/{key}.vtt     one single-segment WebVTT playlist per subtitle track

Subtitle timing: cue times are seconds from the start of the video (the MP4 rendition's time 0).
MPEG-TS segments start at an arbitrary PTS (ffmpeg adds ~1.4 s), so each WebVTT file carries
``X-TIMESTAMP-MAP=MPEGTS:<pts of time 0>,LOCAL:00:00:00.000`` (RFC 8216 section 3.5), which
:func:`mpegts_start` measures from the first segment.

Quoted strings in HLS attribute lists cannot contain ``"``, CR or LF and have no escape mechanism
(RFC 8216 section 4.2), so subtitle names have double quotes replaced by ``'`` and line breaks by
spaces.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av

from vodscribe.atomic import write_atomic
from vodscribe.media.ffmpeg import input_args, run_ffmpeg
from vodscribe.media.probe import MediaKind, open_media
from vodscribe.media.transcode import Rendition

MASTER = "master.m3u8"
SUBS_DIR = "subs"
SUBTITLE_GROUP = "subs"
#: PTS clock of MPEG-TS.
MPEGTS_HZ = 90_000

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
_WEBVTT_FIRST_LINE = re.compile(r"WEBVTT(?:[ \t].*)?")
_TIMESTAMP_MAP = "X-TIMESTAMP-MAP="
#: Video packets of the first segment read to find its earliest PTS (more than a GOP at 2 s keyframes).
_FIRST_PACKETS = 600


@dataclass(frozen=True)
class HlsVariant:
    """A rendition packaged as HLS, with what ``EXT-X-STREAM-INF`` needs.

    ``playlist`` is relative to the HLS directory. Bandwidths are bits/s: ``bandwidth`` the peak
    segment bitrate, ``average_bandwidth`` over the whole playlist. ``video_start`` is where the first
    video frame sits on the MP4's timeline (0 unless the audio starts before the picture).
    """

    name: str
    playlist: str
    bandwidth: int
    average_bandwidth: int
    width: int
    height: int
    codecs: str
    frame_rate: float | None
    video_start: float = 0.0


@dataclass(frozen=True)
class SubtitleTrack:
    """A subtitle track of the master playlist.

    ``key`` names its files (``subs/{key}.vtt``): letters, digits, ``_`` and ``-`` only.
    ``language`` is the ISO 639-1 or BCP-47 tag for ``LANGUAGE=`` (``en``, ``pt-BR``).
    """

    key: str
    name: str
    language: str
    default: bool = False

    def __post_init__(self) -> None:
        if not _KEY.fullmatch(self.key):
            raise ValueError(f"subtitle key must be 1-64 of [A-Za-z0-9_-]: {self.key!r}")
        if not _LANGUAGE.fullmatch(self.language):
            raise ValueError(f"subtitle language must be an ISO 639-1 or BCP-47 tag: {self.language!r}")


@dataclass(frozen=True)
class Segment:
    """One entry of a media playlist: its URI and ``#EXTINF`` duration in seconds."""

    uri: str
    duration: float


# --- variants ----------------------------------------------------------------------------------------


def package_hls(
    rendition: Rendition,
    out_dir: Path,
    *,
    segment_seconds: int = 6,
    should_stop: Callable[[], bool] | None = None,
) -> HlsVariant:
    """Remux an MP4 rendition (no re-encoding) into ``out_dir/{name}.m3u8`` + ``{name}_NNNN.ts``.

    Segments are cut at keyframes, so with the 2 s keyframe interval of :func:`transcode` they are
    ``segment_seconds`` long (the last one shorter). Idempotent: a previous run's segments are removed.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    name = rendition.name
    for stale in out_dir.glob(f"{name}_*.ts"):
        stale.unlink()
    playlist = out_dir / f"{name}.m3u8"
    args = [
        *input_args(rendition.path, MediaKind.MP4),
        *("-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-sn", "-dn", "-map_metadata", "-1"),
        *("-f", "hls", "-hls_time", str(segment_seconds), "-hls_playlist_type", "vod"),
        *("-hls_flags", "temp_file"),
        *("-hls_segment_filename", _escape_percent(str(out_dir)) + f"/{name}_%04d.ts", str(playlist)),
    ]
    run_ffmpeg(args, duration=rendition.duration, should_stop=should_stop)
    segments = read_media_playlist(playlist)
    target = max([float(segment_seconds), *(s.duration for s in segments)])
    bandwidth, average = _bandwidths(out_dir, segments, target)
    codecs, frame_rate, video_start = _describe_streams(rendition.path)
    return HlsVariant(
        name=name,
        playlist=playlist.name,
        bandwidth=bandwidth,
        average_bandwidth=average,
        width=rendition.width,
        height=rendition.height,
        codecs=codecs,
        frame_rate=frame_rate,
        video_start=video_start,
    )


def _escape_percent(text: str) -> str:
    """Make ``text`` literal in an ffmpeg filename pattern (where ``%d`` is the segment number)."""
    return text.replace("%", "%%")


def read_media_playlist(path: Path) -> list[Segment]:
    """The segments (URI, ``#EXTINF`` duration) of a media playlist."""
    segments: list[Segment] = []
    duration: float | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"):
            duration = float(line.removeprefix("#EXTINF:").split(",", 1)[0])
        elif line and not line.startswith("#") and duration is not None:
            segments.append(Segment(line, duration))
            duration = None
    return segments


def _bandwidths(out_dir: Path, segments: Sequence[Segment], target: float) -> tuple[int, int]:
    """(peak, average) bits/s of the segments, from their sizes on disk and their durations."""
    sizes = [(out_dir / s.uri).stat().st_size for s in segments]
    durations = [s.duration for s in segments]
    total = sum(durations)
    if total <= 0:
        return 0, 0
    average = sum(sizes) * 8 / total
    return math.ceil(max(average, peak_bitrate(sizes, durations, target))), math.ceil(average)


def peak_bitrate(sizes: Sequence[int], durations: Sequence[float], target: float) -> float:
    """Peak bits/s as Apple's HLS authoring spec measures it.

    The highest bitrate of any run of consecutive segments lasting 0.5 to 1.5 times the target
    duration, so that a 0.1 s tail segment holding a keyframe does not inflate BANDWIDTH. 0 when no
    run qualifies (a video shorter than half a segment: the caller uses the average).
    """
    peak = 0.0
    for start in range(len(sizes)):
        bits, seconds = 0, 0.0
        for size, duration in zip(sizes[start:], durations[start:], strict=True):
            bits, seconds = bits + size * 8, seconds + duration
            if seconds > 1.5 * target:
                break
            if seconds >= 0.5 * target:
                peak = max(peak, bits / seconds)
    return peak


def _describe_streams(mp4: Path) -> tuple[str, float | None, float]:
    """(RFC 6381 ``CODECS``, frame rate, video start in seconds) of an MP4, read with PyAV."""
    with open_media(mp4, MediaKind.MP4) as container:
        video = container.streams.video[0]
        codecs = [_video_codec_string(video)]
        if container.streams.audio:
            codecs.append(_audio_codec_string(container.streams.audio[0]))
        rate = float(video.average_rate) if video.average_rate else None
        origin = (container.start_time or 0) / av.time_base
        known = video.start_time is not None and video.time_base is not None
        start = float(video.start_time * video.time_base) - origin if known else 0.0  # type: ignore[operator]
    return ",".join(codecs), rate, max(0.0, start)


def _video_codec_string(stream: av.VideoStream) -> str:
    """``avc1.PPCCLL`` from the H.264 decoder configuration (avcC) or the first SPS (Annex B)."""
    extradata = bytes(stream.codec_context.extradata or b"")
    if len(extradata) >= 4 and extradata[0] == 1:  # avcC: version, profile, compatibility, level
        return f"avc1.{extradata[1:4].hex()}"
    sps = _annexb_sps(extradata)
    if sps is not None and len(sps) >= 4:
        return f"avc1.{sps[1:4].hex()}"
    return "avc1.640028"  # High@4.0: what players assume when nothing better is known


def _annexb_sps(data: bytes) -> bytes | None:
    """The first sequence parameter set NAL unit (type 7) in Annex B data."""
    for chunk in re.split(b"\x00\x00\x01", data):
        if chunk and chunk[0] & 0x1F == 7:
            return chunk
    return None


def _audio_codec_string(stream: av.AudioStream) -> str:
    """``mp4a.40.N`` with N the AAC audio object type from the AudioSpecificConfig."""
    extradata = bytes(stream.codec_context.extradata or b"")
    object_type = extradata[0] >> 3 if extradata else 0
    if object_type in (0, 31):
        object_type = {"HE-AAC": 5, "HE-AACv2": 29}.get(stream.codec_context.profile or "", 2)
    return f"mp4a.40.{object_type}"


def mpegts_start(out_dir: Path, variant: HlsVariant) -> int:
    """The MPEG-TS PTS (90 kHz) of the video's time 0, for ``X-TIMESTAMP-MAP``.

    Read from the first segment: the earliest video PTS, moved back by ``variant.video_start``.
    """
    segments = read_media_playlist(out_dir / variant.playlist)
    if not segments:
        raise ValueError(f"{variant.playlist} has no segments")
    first = out_dir / segments[0].uri
    with open_media(first, MediaKind.MPEGTS) as ts:
        streams = ts.streams.video or ts.streams
        pts = [
            p.pts
            for _, p in zip(range(_FIRST_PACKETS), ts.demux(streams[0]), strict=False)
            if p.pts is not None
        ]
    if not pts:
        raise ValueError(f"{segments[0].uri} has no timestamps")
    return min(pts) - round(variant.video_start * MPEGTS_HZ)


# --- subtitles -----------------------------------------------------------------------------------------


def timestamp_mapped_vtt(vtt: str, mpegts: int) -> str:
    """``vtt`` with ``X-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000`` right after ``WEBVTT``.

    Line endings are normalised to LF, a BOM is dropped and an existing X-TIMESTAMP-MAP in the
    header is replaced. Raises ValueError if the text does not start with ``WEBVTT``.
    """
    lines = vtt.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not _WEBVTT_FIRST_LINE.fullmatch(lines[0]):
        raise ValueError("not a WebVTT document (the first line must be WEBVTT)")
    header_end = lines.index("") if "" in lines else len(lines)
    header = [line for line in lines[1:header_end] if not line.startswith(_TIMESTAMP_MAP)]
    mapping = f"{_TIMESTAMP_MAP}MPEGTS:{mpegts},LOCAL:00:00:00.000"
    text = "\n".join([lines[0], mapping, *header, *lines[header_end:]])
    return text if text.endswith("\n") else text + "\n"


def write_subtitle_playlist(
    out_dir: Path, track: SubtitleTrack, vtt: str, *, duration: float, mpegts: int
) -> str:
    """Write ``subs/{key}.vtt`` (with X-TIMESTAMP-MAP) and ``subs/{key}.m3u8``; return the playlist's path.

    The playlist is a VOD media playlist with one WebVTT segment spanning the whole ``duration``.
    The returned path is relative to ``out_dir`` (``subs/{key}.m3u8``), as :func:`write_master` wants it.
    """
    subs = out_dir / SUBS_DIR
    subs.mkdir(parents=True, exist_ok=True)
    write_atomic(subs / f"{track.key}.vtt", timestamp_mapped_vtt(vtt, mpegts))
    seconds = max(duration, 0.001)
    playlist = "\n".join([
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{math.ceil(seconds)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        f"#EXTINF:{seconds:.3f},",
        f"{track.key}.vtt",
        "#EXT-X-ENDLIST",
        "",
    ])  # fmt: skip
    write_atomic(subs / f"{track.key}.m3u8", playlist)
    return f"{SUBS_DIR}/{track.key}.m3u8"


# --- master -------------------------------------------------------------------------------------------


def write_master(
    out_dir: Path, variants: Sequence[HlsVariant], subtitles: Sequence[tuple[SubtitleTrack, str]]
) -> Path:
    """Write ``master.m3u8`` atomically and remove the ``subs/`` files of tracks no longer listed.

    ``subtitles`` pairs each track with its playlist path from :func:`write_subtitle_playlist`.
    Variants are listed lowest first. At most one subtitle track is DEFAULT=YES (the first one
    flagged), and duplicate names get `` (2)``, `` (3)``... Call again whenever the subtitles
    change; calls for one video must not run concurrently with each other or with
    :func:`write_subtitle_playlist` for that video.
    """
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    lines += _subtitle_media_lines(subtitles)
    for variant in sorted(variants, key=lambda v: (v.height * v.width, v.bandwidth)):
        lines += [_stream_inf(variant, with_subtitles=bool(subtitles)), variant.playlist]
    master = out_dir / MASTER
    write_atomic(master, "\n".join(lines) + "\n")
    _remove_stale_subtitles(out_dir, subtitles)
    return master


def _subtitle_media_lines(subtitles: Sequence[tuple[SubtitleTrack, str]]) -> list[str]:
    names = unique_names([quoted_string_safe(track.name) or track.language for track, _ in subtitles])
    default_index = next((i for i, (track, _) in enumerate(subtitles) if track.default), None)
    return [
        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{SUBTITLE_GROUP}",NAME="{name}",'
        f'LANGUAGE="{track.language}",AUTOSELECT=YES,DEFAULT={"YES" if i == default_index else "NO"},'
        f'URI="{quoted_string_safe(uri)}"'
        for i, ((track, uri), name) in enumerate(zip(subtitles, names, strict=True))
    ]


def _stream_inf(variant: HlsVariant, *, with_subtitles: bool) -> str:
    attributes = [
        f"BANDWIDTH={max(1, variant.bandwidth)}",
        f"AVERAGE-BANDWIDTH={max(1, variant.average_bandwidth)}",
        f"RESOLUTION={variant.width}x{variant.height}",
        f'CODECS="{variant.codecs}"',
    ]
    if variant.frame_rate:
        attributes.append(f"FRAME-RATE={variant.frame_rate:.3f}")
    if with_subtitles:
        attributes.append(f'SUBTITLES="{SUBTITLE_GROUP}"')
    return "#EXT-X-STREAM-INF:" + ",".join(attributes)


def quoted_string_safe(text: str) -> str:
    """``text`` made valid inside an HLS quoted-string: no ``"``, CR or LF (there is no escaping)."""
    return " ".join(text.replace('"', "'").split())


def unique_names(names: Sequence[str]) -> list[str]:
    """``names`` with repeats renamed ``"name (2)"``, ``"name (3)"``... (never clashing with another)."""
    reserved = set(names)
    used: set[str] = set()
    result: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate in used or (candidate != name and candidate in reserved):
            n += 1
            candidate = f"{name} ({n})"
        used.add(candidate)
        result.append(candidate)
    return result


def _remove_stale_subtitles(out_dir: Path, subtitles: Sequence[tuple[SubtitleTrack, str]]) -> None:
    """Delete files in ``subs/`` that belong to no listed track."""
    subs = out_dir / SUBS_DIR
    if not subs.is_dir():
        return
    keep = {f"{track.key}{suffix}" for track, _ in subtitles for suffix in (".vtt", ".m3u8")}
    keep |= {Path(uri).name for _, uri in subtitles}
    for path in subs.iterdir():
        if path.is_file() and path.name not in keep:
            path.unlink(missing_ok=True)
