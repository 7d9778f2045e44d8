"""Cut a video's clip (Gcore ``clip_start_seconds`` / ``clip_duration_seconds``) out of its origin.

The clip is cut once, right after the download, into a new origin, and every later step (probe,
transcode, HLS, screenshot, the kept origin the AI subtitles recognise) works on it unchanged: so
the renditions, the duration, the screenshot and the subtitle cue times all cover the clip and start
at its 0, with no step having to know about clips. The cut seeks accurately (``-ss`` before the
input, decoding from the keyframe before) and re-encodes only the segment, nearly losslessly (x264
CRF 16, FLAC audio, in Matroska), since the renditions are encoded from it again; stream copy would
start at a keyframe, not at the second asked for. Audio that starts after the picture keeps its
offset within the clip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vodscribe.atomic import replacing
from vodscribe.errors import MediaError
from vodscribe.media.ffmpeg import input_args, run_ffmpeg
from vodscribe.media.probe import MediaInfo
from vodscribe.media.transcode import video_geometry


@dataclass(frozen=True, slots=True)
class Clip:
    """Where the clip starts in the origin and how long it lasts (None: to the end), in seconds."""

    start: int
    duration: int | None = None

    @property
    def whole(self) -> bool:
        """Whether the clip is the whole origin (nothing to cut)."""
        return self.start == 0 and self.duration is None


def cut(
    source: Path,
    info: MediaInfo,
    clip: Clip,
    out: Path,
    *,
    should_stop: Callable[[], bool] | None = None,
    max_seconds: float | None = None,
) -> Path:
    """Write ``clip`` of ``source`` to ``out`` (Matroska: the main video stream and the first audio
    stream); raise MediaError when the clip starts at or past the end of the media. Past
    ``max_seconds`` (a clip to the end of a long origin) the output is cut just after the limit, for
    the next step to refuse as too long."""
    if info.duration > 0 and clip.start >= info.duration:
        raise _past_end(clip, info.duration)
    geometry = video_geometry(source, info)
    length = clip.duration
    if length is None and max_seconds:
        length = int(max_seconds) + 2
    expected = min(length, info.duration - clip.start) if length is not None else info.duration - clip.start
    with replacing(out) as temp:
        args = ["-ss", str(clip.start), *input_args(source, info.kind)]
        args += ["-t", str(length)] if length is not None else []
        args += ["-map", f"0:{geometry.stream_index}", "-map", "0:a:0?"]
        # x264 with 4:2:0 needs even sizes: an odd row or column is dropped.
        args += ["-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2"]
        args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-c:a", "flac"]
        args += ["-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1", "-f", "matroska", str(temp)]
        run_ffmpeg(args, duration=max(expected, 0.0) or None, should_stop=should_stop)
    return out


def _past_end(clip: Clip, duration: float) -> MediaError:
    return MediaError(
        f"clip_start_seconds ({clip.start} s) is at or past the end of the video ({duration:.1f} s long)."
    )


def check_cut(clip: Clip, info: MediaInfo, origin_duration: float) -> None:
    """Refuse a cut that holds no picture (a header that promised more than the file holds)."""
    if not info.has_video or info.duration <= 0:
        raise _past_end(clip, origin_duration)
