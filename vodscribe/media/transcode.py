"""Transcode a source video into H.264/AAC MP4 renditions (240p, 360p, 480p) and take a screenshot.

One ffmpeg run decodes the source once and feeds every rendition's encoder through a split/scale
filter graph. Decisions:

* A rendition's "p" number is the short side of the displayed picture (as on YouTube and most
  platforms): a portrait 1080x1920 phone video gives a 360p rendition of 360x640, not 202x360.
  Renditions are never larger than the source; a source smaller than 240p gets one rendition at its
  own size (named after it, e.g. ``vod120p``).
* Sizes come from the *displayed* picture: the sample aspect ratio (anamorphic video) and the
  rotation flag of phone videos are applied, and the output has square pixels.
* Keyframes every 2 s (``-force_key_frames``, on the same timestamps in every rendition) so HLS
  segments line up across renditions; CRF 23 capped by a per-size ``-maxrate``.
* Audio: AAC-LC 64 kbit/s, stereo, 48 kHz (the 64 kbit/s track Gcore's ASR note asks for). Timestamps
  are kept: audio that starts 1.5 s after the picture still starts 1.5 s late in the output (the MP4
  muxer writes an edit list); nothing pads or resamples the offset away, because subtitle cue times
  are shifted by that same audio start.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av

from vodscribe.atomic import leftovers, replacing
from vodscribe.errors import CorruptMediaError, MediaError, too_long
from vodscribe.media.ffmpeg import input_args, run_ffmpeg
from vodscribe.media.probe import MediaInfo, MediaKind, check_duration, open_media

#: (nominal height, name): the renditions made when the source is at least that large.
RENDITIONS: tuple[tuple[int, str], ...] = ((240, "vod240p"), (360, "vod360p"), (480, "vod480p"))

#: Peak video bitrate (kbit/s) per nominal height; CRF decides below it.
_MAXRATE_KBPS = {240: 500, 360: 900, 480: 1400}
_MIN_MAXRATE_KBPS = 300
KEYFRAME_SECONDS = 2
AUDIO_BITRATE = 64_000
AUDIO_RATE = 48_000
AUDIO_CHANNELS = 2
#: An output shorter than this share of the source (minus a second) means the source is truncated.
_MIN_DURATION_SHARE = 0.9
#: Videos shorter than this get their screenshot from the first frame.
_SHORT_VIDEO_S = 3.0

NO_VIDEO_MESSAGE = "The file has no video track."


@dataclass(frozen=True)
class RenditionPlan:
    """A rendition to make: its name (``vod360p``) and output size in pixels (both even)."""

    name: str
    width: int
    height: int


@dataclass(frozen=True)
class Rendition:
    """A finished MP4 rendition. ``bitrate`` is measured (bits/s), from ``size`` and ``duration``."""

    name: str
    width: int
    height: int
    path: Path
    size: int
    duration: float
    bitrate: int


@dataclass(frozen=True)
class VideoGeometry:
    """The main video stream as displayed: stream index, displayed size, rotation in degrees."""

    stream_index: int
    width: int
    height: int
    rotation: int = 0


# --- planning ----------------------------------------------------------------------------------------


def plan_renditions(info: MediaInfo, *, display: tuple[int, int] | None = None) -> list[RenditionPlan]:
    """The renditions for a source, smallest first.

    ``display`` is the displayed (width, height) from :func:`video_geometry` (after sample aspect
    ratio and rotation); without it the coded ``info.width`` x ``info.height`` is used.
    """
    width, height = display or (info.width, info.height)
    if not info.has_video or not width or not height:
        raise MediaError(NO_VIDEO_MESSAGE)
    short, long_ = min(width, height), max(width, height)
    plans = [_plan(name, p, long_ / short, width >= height) for p, name in RENDITIONS if p <= short]
    if not plans:
        p = max(2, _even_down(short))
        plans = [_plan(f"vod{p}p", p, long_ / short, width >= height)]
    return plans


def _plan(name: str, short: int, ratio: float, landscape: bool) -> RenditionPlan:
    long_ = max(2, _even(short * ratio))
    return RenditionPlan(name, long_, short) if landscape else RenditionPlan(name, short, long_)


def _even(value: float) -> int:
    """Nearest even integer (x264 with yuv420p needs even sizes)."""
    return int(round(value / 2) * 2)


def _even_down(value: int) -> int:
    return value - value % 2


def video_geometry(source: Path, info: MediaInfo) -> VideoGeometry:
    """Read the main video stream's index, displayed size and rotation with PyAV.

    The rotation is that of the first decoded frame (ffmpeg auto-rotates the same way when it
    decodes, so the output is upright); the width is stretched by the sample aspect ratio.
    """
    if not info.has_video:
        raise MediaError(NO_VIDEO_MESSAGE)
    try:
        with open_media(source, info.kind) as container:
            stream = _main_video(container)
            sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
            rotation = _first_frame_rotation(container, stream)
            index, width, height = stream.index, stream.codec_context.width, stream.codec_context.height
    except av.FFmpegError as exc:
        raise CorruptMediaError("The video track is damaged and cannot be read.") from exc
    if not width or not height:
        raise MediaError(NO_VIDEO_MESSAGE)
    if sar and sar > 0 and sar != 1:
        width = max(2, round(width * Fraction(sar)))
    if rotation % 180 == 90:
        width, height = height, width
    return VideoGeometry(index, width, height, rotation)


def _main_video(container: av.container.InputContainer) -> av.VideoStream:
    """The first video stream that is not cover art (as in :mod:`~vodscribe.media.probe`)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise MediaError(NO_VIDEO_MESSAGE)


def _first_frame_rotation(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """Rotation (0, 90, 180, 270) of the first decodable frame; 0 if none decodes."""
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.InvalidDataError:
            continue
        for frame in frames:
            return round(frame.rotation) % 360
    return 0


# --- transcoding ---------------------------------------------------------------------------------------


def transcode(
    source: Path,
    info: MediaInfo,
    out_dir: Path,
    *,
    on_progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_seconds: float | None = None,
) -> list[Rendition]:
    """Make every planned rendition of ``source`` in one ffmpeg run, as ``out_dir/{name}.mp4``.

    Idempotent: outputs are written under temporary names and renamed only when all of them are
    complete, so a crash or cancel never leaves a half-written ``vod*.mp4``. Raises MediaError for a
    file without video, CorruptMediaError when ffmpeg fails or the source turns out truncated,
    TooLongError past ``max_seconds`` (by the header, or by what ffmpeg made: the output is cut just
    past the limit, so a lying header costs no more than the limit), and Cancelled when
    ``should_stop()`` says so. ``out_dir`` is the caller's alone (one job per video): temporary
    renditions a killed run left there are deleted first.
    """
    if not info.has_video:
        raise MediaError(NO_VIDEO_MESSAGE)
    check_duration(info, max_seconds)
    geometry = video_geometry(source, info)
    plans = plan_renditions(info, display=(geometry.width, geometry.height))
    out_dir.mkdir(parents=True, exist_ok=True)
    finals = [out_dir / f"{plan.name}.mp4" for plan in plans]
    for _, name in RENDITIONS:  # every rendition name: an earlier run may have planned others
        for stale in leftovers(out_dir / f"{name}.mp4"):
            stale.unlink(missing_ok=True)
    with ExitStack() as outputs:  # all renamed into place once every rendition is complete
        temps = [outputs.enter_context(replacing(final)) for final in finals]
        args = _transcode_args(source, info, geometry, plans, temps, max_seconds)
        run_ffmpeg(args, duration=info.duration, on_progress=on_progress, should_stop=should_stop)
        renditions = [_measure(plan, temp) for plan, temp in zip(plans, temps, strict=True)]
        if max_seconds and max(r.duration for r in renditions) > max_seconds:
            raise too_long(max_seconds)
        _check_complete(renditions, info)
    return [replace(r, path=final) for r, final in zip(renditions, finals, strict=True)]


def _transcode_args(
    source: Path,
    info: MediaInfo,
    geometry: VideoGeometry,
    plans: list[RenditionPlan],
    outputs: list[Path],
    max_seconds: float | None = None,
) -> list[str]:
    """The ffmpeg arguments: one input, a split/scale graph, one encoded MP4 per plan."""
    args = [*input_args(source, info.kind), "-filter_complex", _filter_graph(geometry, plans)]
    cut = ["-t", f"{max_seconds + 1:.3f}"] if max_seconds else []
    for i, (plan, output) in enumerate(zip(plans, outputs, strict=True)):
        args += ["-map", f"[v{i}]", *cut, *_video_codec_args(plan)]
        args += ["-map", "0:a:0", *_audio_codec_args()] if info.has_audio else ["-an"]
        args += ["-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1"]
        args += ["-max_muxing_queue_size", "4096", "-movflags", "+faststart", "-f", "mp4", str(output)]
    return args


def _filter_graph(geometry: VideoGeometry, plans: list[RenditionPlan]) -> str:
    """``[0:N]split=K[s0]...;[s0]scale=WxH,setsar=1[v0];...`` (auto-rotation is applied before it)."""
    n = len(plans)
    head = f"[0:{geometry.stream_index}]split={n}" + "".join(f"[s{i}]" for i in range(n))
    scales = [
        f"[s{i}]scale={p.width}:{p.height}:flags=bicubic,setsar=1,format=yuv420p[v{i}]"
        for i, p in enumerate(plans)
    ]
    return ";".join([head, *scales])


def _video_codec_args(plan: RenditionPlan) -> list[str]:
    maxrate = _MAXRATE_KBPS.get(min(plan.width, plan.height), _MIN_MAXRATE_KBPS)
    return [
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
        "-maxrate", f"{maxrate}k", "-bufsize", f"{2 * maxrate}k", "-pix_fmt", "yuv420p",
        "-force_key_frames", f"expr:gte(t,n_forced*{KEYFRAME_SECONDS})",
    ]  # fmt: skip


def _audio_codec_args() -> list[str]:
    return ["-c:a", "aac", "-b:a", str(AUDIO_BITRATE), "-ac", str(AUDIO_CHANNELS), "-ar", str(AUDIO_RATE)]


def _measure(plan: RenditionPlan, path: Path) -> Rendition:
    """Measure a finished output: size on disk, duration, average bitrate."""
    try:
        with open_media(path, MediaKind.MP4) as container:
            duration = _container_duration(container)
            if not container.streams.video or container.streams.video[0].frames == 0:
                raise CorruptMediaError("The video track is damaged: no frame could be decoded.")
    except av.FFmpegError as exc:
        raise CorruptMediaError("The video could not be transcoded: no usable output.") from exc
    size = path.stat().st_size
    bitrate = round(size * 8 / duration) if duration > 0 else 0
    return Rendition(plan.name, plan.width, plan.height, path, size, duration, bitrate)


def _container_duration(container: av.container.InputContainer) -> float:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return 0.0


def _check_complete(renditions: list[Rendition], info: MediaInfo) -> None:
    """A source whose index promises more than its data holds (a truncated upload) is corrupt."""
    shortest = min(r.duration for r in renditions)
    if info.duration > 0 and shortest < info.duration * _MIN_DURATION_SHARE - 1.0:
        raise CorruptMediaError(
            f"The file is incomplete: only {shortest:.1f} s of its {info.duration:.1f} s could be read."
        )


# --- screenshot -------------------------------------------------------------------------------------


class _NoFrame(Exception):
    pass


def screenshot_time(duration: float) -> float:
    """Where the screenshot is taken: a third of the way in, or the first frame of a short video."""
    return 0.0 if duration < _SHORT_VIDEO_S else duration / 3


def screenshot(source_mp4: Path, duration: float, out: Path) -> Path:
    """Save a JPEG of the frame at :func:`screenshot_time` of a rendition (its size, i.e. use the largest).

    Falls back to the first frame if nothing decodes at the chosen time. Written atomically; what a
    killed run left half-written is deleted first (``out`` is the caller's alone).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in leftovers(out):
        stale.unlink(missing_ok=True)
    for at in dict.fromkeys((screenshot_time(duration), 0.0)):
        try:
            with replacing(out) as temp:
                _grab_frame(source_mp4, at, temp)
                if not (temp.exists() and temp.stat().st_size > 0):
                    raise _NoFrame  # nothing decoded there: not renamed, try the next time
        except _NoFrame:
            continue
        return out
    raise CorruptMediaError("The video track is damaged: no frame could be decoded.")


def _grab_frame(source_mp4: Path, at: float, out: Path) -> None:
    seek = ["-ss", f"{at:.3f}"] if at > 0 else []
    args = [*seek, *input_args(source_mp4, MediaKind.MP4), "-map", "0:v:0", "-frames:v", "1", "-an", "-sn"]
    args += ["-c:v", "mjpeg", "-q:v", "3", "-f", "image2", "-update", "1", str(out)]
    run_ffmpeg(args, duration=None)
