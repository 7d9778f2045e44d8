"""vodscribe.media.ffmpeg and .transcode: renditions of real and generated videos, run by real ffmpeg."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import pytest

from tests.waiting import eventually
from vodscribe.errors import Cancelled, CorruptMediaError, MediaError
from vodscribe.media import ffmpeg as ffmpeg_module
from vodscribe.media.ffmpeg import input_args, run_ffmpeg, summarise
from vodscribe.media.probe import MediaInfo, MediaKind, probe
from vodscribe.media.transcode import (
    RENDITIONS,
    Rendition,
    RenditionPlan,
    plan_renditions,
    screenshot,
    screenshot_time,
    transcode,
    video_geometry,
)

DATA = Path(__file__).parent / "data"
JFK = DATA / "jfk_librivox.mp4"  # 320x240 H.264 10 fps + AAC mono 16 kHz, 24.128 s of speech

_X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


def _ffmpeg(out: Path, *args: str) -> Path:
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run([*cmd, *args, str(out)], check=True, timeout=60)
    return out


def _video(size: str, seconds: float = 2, rate: int = 25) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}:duration={seconds}"]


def _sine(seconds: float = 2, rate: int = 44100) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}:sample_rate={rate}"]


# name -> ffmpeg arguments making it (all with audio unless the name says otherwise)
SOURCES: dict[str, list[str]] = {
    "small.mp4": [*_video("160x120"), *_sine(), *_X264, "-c:a", "aac"],
    # odd sizes need 4:4:4 (x264 refuses them in 4:2:0)
    "odd.mp4": [*_video("426x241"), *_sine(), "-c:v", "libx264", "-pix_fmt", "yuv444p", "-c:a", "aac"],
    "hd.mp4": [*_video("1280x720"), *_sine(), *_X264, "-c:a", "aac"],
    "portrait.mp4": [*_video("360x640"), *_sine(), *_X264, "-c:a", "aac"],
    "anamorphic.mp4": [*_video("320x240"), *_X264, "-vf", "setsar=4/3"],
    "noaudio.mp4": [*_video("160x120"), *_X264],
    "late.mp4": [
        *_video("160x120", 4),
        *["-itsoffset", "1.5", *_sine(2)],
        *["-map", "0:v", "-map", "1:a", *_X264, "-c:a", "aac"],
    ],
    "audio.m4a": [*_sine(), "-c:a", "aac"],
    "faststart.mp4": [*_video("160x120", 4), *_sine(4), *_X264, "-c:a", "aac", "-movflags", "+faststart"],
    "clip.mkv": [*_video("320x180"), *_sine(), *_X264, "-c:a", "libopus"],
}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Make a SOURCES file on first use."""
    root = tmp_path_factory.mktemp("sources")

    def make(name: str) -> Path:
        out = root / name
        if not out.exists():
            _ffmpeg(out, *SOURCES[name])
        return out

    return make


@pytest.fixture(scope="module")
def jfk_renditions(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Rendition], list[float]]:
    """The real speech MP4 transcoded once, with the progress values reported."""
    progress: list[float] = []
    out = tmp_path_factory.mktemp("jfk")
    return transcode(JFK, probe(JFK), out, on_progress=progress.append), progress


def _info(width: int, height: int) -> MediaInfo:
    return MediaInfo(MediaKind.MP4, 10.0, True, True, 0.0, width=width, height=height)


def _streams(path: Path) -> tuple[av.VideoStream | None, av.AudioStream | None, av.container.InputContainer]:
    container = av.open(str(path))
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    return video, audio, container


def _start(stream: av.stream.Stream) -> float:
    assert stream.start_time is not None
    return float(stream.start_time * stream.time_base)


# --- planning ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1280, 720), [("vod240p", 426, 240), ("vod360p", 640, 360), ("vod480p", 854, 480)]),
        ((1920, 1080), [("vod240p", 426, 240), ("vod360p", 640, 360), ("vod480p", 854, 480)]),
        ((640, 480), [("vod240p", 320, 240), ("vod360p", 480, 360), ("vod480p", 640, 480)]),
        ((426, 241), [("vod240p", 424, 240)]),
        ((854, 479), [("vod240p", 428, 240), ("vod360p", 642, 360)]),
        ((360, 640), [("vod240p", 240, 426), ("vod360p", 360, 640)]),  # portrait: "p" is the short side
        ((1080, 1920), [("vod240p", 240, 426), ("vod360p", 360, 640), ("vod480p", 480, 854)]),
        ((160, 120), [("vod120p", 160, 120)]),  # smaller than 240p: one rendition, never upscaled
        ((161, 121), [("vod120p", 160, 120)]),
        ((240, 240), [("vod240p", 240, 240)]),
    ],
)
def test_plan_renditions(size: tuple[int, int], expected: list[tuple[str, int, int]]) -> None:
    plans = plan_renditions(_info(*size))
    assert plans == [RenditionPlan(*e) for e in expected]
    for plan in plans:
        assert plan.width % 2 == 0 and plan.height % 2 == 0
        assert plan.width <= size[0] + 1 and plan.height <= size[1] + 1
        assert abs(plan.width / plan.height - size[0] / size[1]) < 0.02


def test_plan_renditions_uses_display_size() -> None:
    assert plan_renditions(_info(1920, 1080), display=(1080, 1920))[0] == RenditionPlan("vod240p", 240, 426)


def test_plan_renditions_refuses_audio_only() -> None:
    with pytest.raises(MediaError, match="no video track"):
        plan_renditions(MediaInfo(MediaKind.MP4, 2.0, True, False, 0.0))


def test_renditions_table() -> None:
    assert [name for _, name in RENDITIONS] == ["vod240p", "vod360p", "vod480p"]


# --- ffmpeg runner -------------------------------------------------------------------------------------


def test_input_args_force_format_and_file_protocol(tmp_path: Path) -> None:
    args = input_args(Path("x:y.mp4"), MediaKind.MP4)
    assert args[:4] == ["-protocol_whitelist", "file", "-f", "mov"]
    assert args[4] == "-i" and Path(args[5]).is_absolute()


def test_run_ffmpeg_reports_failure_without_our_paths(tmp_path: Path) -> None:
    bad = tmp_path / "secret-dir" / "upload.mp4"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00\x00\x00\x20ftypisom" + os.urandom(4000))
    with pytest.raises(CorruptMediaError) as caught:
        run_ffmpeg([*input_args(bad, MediaKind.MP4), "-f", "null", "-"], duration=1.0)
    message = caught.value.message
    assert message.startswith("The file is damaged") and len(message) < 400
    assert "secret-dir" not in message and str(tmp_path) not in message


def test_summarise_strips_prefixes_and_paths() -> None:
    lines = [
        "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0c0] moov atom not found",
        "/data/videos/42/source.bin: Invalid data found when processing input",
        "Error opening input file /data/videos/42/source.bin.",
    ]
    summary = summarise(lines, ["-i", "/data/videos/42/source.bin"])
    assert summary == (
        "moov atom not found; Invalid data found when processing input; Error opening input file the file."
    )


class _Spy:
    """Records the Popen objects that run_ffmpeg creates."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self._popen = subprocess.Popen

    def __call__(self, *args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        proc = self._popen(*args, **kwargs)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc


def _assert_killed(proc: subprocess.Popen[bytes]) -> None:
    assert proc.returncode == -signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # the whole process group is gone


def test_run_ffmpeg_cancel_kills_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _Spy()
    monkeypatch.setattr(ffmpeg_module.subprocess, "Popen", spy)
    progress: list[float] = []
    args = ["-re", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=60", "-f", "null", "-"]
    with pytest.raises(Cancelled):
        run_ffmpeg(args, duration=60, on_progress=progress.append, should_stop=lambda: bool(progress))
    assert progress and progress[-1] < 0.2  # stopped mid-run, in real time
    [proc] = spy.procs
    _assert_killed(proc)


def test_transcode_cancel_leaves_nothing(
    source: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = source("hd.mp4")
    spy = _Spy()
    monkeypatch.setattr(ffmpeg_module.subprocess, "Popen", spy)
    with pytest.raises(Cancelled):
        transcode(src, probe(src), tmp_path, should_stop=lambda: True)
    [proc] = spy.procs
    _assert_killed(proc)
    assert list(tmp_path.iterdir()) == []


# --- transcoding ---------------------------------------------------------------------------------------


def test_jfk_rendition(jfk_renditions: tuple[list[Rendition], list[float]]) -> None:
    renditions, _ = jfk_renditions
    [r] = renditions
    assert (r.name, r.width, r.height) == ("vod240p", 320, 240)
    assert r.path.name == "vod240p.mp4" and r.size == r.path.stat().st_size
    assert r.duration == pytest.approx(24.128, abs=0.1)
    assert r.bitrate == pytest.approx(r.size * 8 / r.duration, rel=0.01)
    video, audio, container = _streams(r.path)
    with container:
        assert video is not None and audio is not None
        assert video.codec_context.name == "h264" and video.codec_context.pix_fmt == "yuv420p"
        assert (video.codec_context.width, video.codec_context.height) == (320, 240)
        assert audio.codec_context.name == "aac" and audio.codec_context.profile == "LC"
        assert audio.codec_context.sample_rate == 48000 and audio.codec_context.channels == 2
        audio_seconds = float(audio.duration * audio.time_base)
        audio_bits = sum(p.size for p in container.demux(audio)) * 8
    assert audio_bits / audio_seconds == pytest.approx(64_000, rel=0.15)


def test_jfk_progress_increases_to_one(jfk_renditions: tuple[list[Rendition], list[float]]) -> None:
    _, progress = jfk_renditions
    assert progress and progress == sorted(progress)
    assert all(0 <= p <= 1 for p in progress) and progress[-1] == 1.0


def test_faststart_and_keyframes_every_two_seconds(
    jfk_renditions: tuple[list[Rendition], list[float]],
) -> None:
    path = jfk_renditions[0][0].path
    head = path.read_bytes()[: 64 * 1024]
    assert 0 <= head.find(b"moov") < head.find(b"mdat")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = [float(p.pts * stream.time_base) for p in container.demux(stream) if p.is_keyframe]
    assert keys[:5] == pytest.approx([0, 2, 4, 6, 8], abs=0.11)  # 10 fps: within a frame


@pytest.mark.parametrize(
    ("name", "sizes"),
    [
        ("hd.mp4", [(426, 240), (640, 360), (854, 480)]),
        ("odd.mp4", [(424, 240)]),
        ("portrait.mp4", [(240, 426), (360, 640)]),
        ("small.mp4", [(160, 120)]),
        ("anamorphic.mp4", [(428, 240)]),  # 320x240 with 4:3 pixels displays as 427x240
        ("clip.mkv", [(320, 180)]),
    ],
)
def test_rendition_sizes(
    source: Callable[[str], Path], tmp_path: Path, name: str, sizes: list[tuple[int, int]]
) -> None:
    src = source(name)
    info = probe(src)
    renditions = transcode(src, info, tmp_path)
    assert [(r.width, r.height) for r in renditions] == sizes
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{r.name}.mp4" for r in renditions)
    for r in renditions:
        video, audio, container = _streams(r.path)
        with container:
            assert video is not None
            assert (video.codec_context.width, video.codec_context.height) == (r.width, r.height)
            assert video.sample_aspect_ratio in (None, Fraction(1))
            assert (video.codec_context.name, video.codec_context.pix_fmt) == ("h264", "yuv420p")
            assert r.duration == pytest.approx(info.duration, abs=0.15)
            assert (audio is not None) == info.has_audio


def test_rotated_phone_video_comes_out_upright(source: Callable[[str], Path], tmp_path: Path) -> None:
    rotated = _ffmpeg(
        tmp_path / "rotated.mp4", "-display_rotation:v", "90", "-i", str(source("odd.mp4")), "-c", "copy"
    )
    info = probe(rotated)
    assert video_geometry(rotated, info).rotation == 90
    [r] = transcode(rotated, info, tmp_path / "out")
    assert (r.width, r.height) == (240, 424)
    with av.open(str(r.path)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height, frame.rotation) == (240, 424, 0)


def test_late_audio_stays_late(source: Callable[[str], Path], tmp_path: Path) -> None:
    src = source("late.mp4")
    info = probe(src)
    assert info.audio_start == pytest.approx(1.5, abs=0.05)
    [r] = transcode(src, info, tmp_path)
    video, audio, container = _streams(r.path)
    with container:
        assert video is not None and audio is not None
        assert _start(audio) - _start(video) == pytest.approx(1.5, abs=0.05)
        first = None
        samples = []
        for frame in container.decode(audio):
            first = frame.time if first is None else first
            samples.append(frame.to_ndarray()[0])
    assert first is not None
    loud = np.flatnonzero(np.abs(np.concatenate(samples)) > 0.01)[0]
    assert first + loud / 48000 == pytest.approx(1.5, abs=0.03)  # the tone itself starts at 1.5 s
    assert probe(r.path).audio_start == pytest.approx(1.5, abs=0.05)


def test_video_without_audio_has_no_audio_track(source: Callable[[str], Path], tmp_path: Path) -> None:
    src = source("noaudio.mp4")
    [r] = transcode(src, probe(src), tmp_path)
    with av.open(str(r.path)) as container:
        assert not container.streams.audio and container.streams.video


def test_audio_only_is_refused(source: Callable[[str], Path], tmp_path: Path) -> None:
    src = source("audio.m4a")
    with pytest.raises(MediaError) as caught:
        transcode(src, probe(src), tmp_path)
    assert caught.value.message == "The file has no video track."


def test_truncated_mp4_is_corrupt(source: Callable[[str], Path], tmp_path: Path) -> None:
    data = source("faststart.mp4").read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])  # the index (moov) is intact, half the samples are gone
    info = probe(truncated)
    out = tmp_path / "out"
    with pytest.raises(CorruptMediaError, match="incomplete"):
        transcode(truncated, info, out)
    assert list(out.iterdir()) == []


def test_unreadable_mp4_is_corrupt(source: Callable[[str], Path], tmp_path: Path) -> None:
    data = source("small.mp4").read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])  # moov at the end: cut off
    with pytest.raises(CorruptMediaError):
        transcode(truncated, _info(160, 120), tmp_path / "out")


def test_rerun_overwrites(source: Callable[[str], Path], tmp_path: Path) -> None:
    src = source("small.mp4")
    info = probe(src)
    first = transcode(src, info, tmp_path)
    second = transcode(src, info, tmp_path)
    assert [r.path for r in first] == [r.path for r in second]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vod120p.mp4"]


# --- screenshot ---------------------------------------------------------------------------------------


def test_screenshot_time() -> None:
    assert screenshot_time(0.5) == 0
    assert screenshot_time(30) == pytest.approx(10)


def test_screenshot(source: Callable[[str], Path], tmp_path: Path) -> None:
    src = source("hd.mp4")
    largest = transcode(src, probe(src), tmp_path)[-1]
    shot = screenshot(largest.path, largest.duration, tmp_path / "shots" / "0.jpg")
    assert shot.read_bytes()[:3] == b"\xff\xd8\xff"
    with av.open(str(shot)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (largest.width, largest.height)
        assert frame.to_ndarray(format="rgb24").std() > 10  # a real picture, not a blank frame
    assert sorted(p.name for p in shot.parent.iterdir()) == ["0.jpg"]


def test_a_killed_run_s_half_written_renditions_go_with_the_next_run(
    source: Callable[[str], Path], tmp_path: Path
) -> None:
    """A media worker killed during ffmpeg leaves its temporary renditions in the video's folder (the
    soak found one, with a 20-minute run's twenty kills); the job's next run deletes them."""
    src, out = source("hd.mp4"), tmp_path / "video"
    script = (
        "import sys; from pathlib import Path; from vodscribe.media.probe import probe; "
        "from vodscribe.media.transcode import transcode; "
        "src = Path(sys.argv[1]); transcode(src, probe(src), Path(sys.argv[2]))"
    )
    run = subprocess.Popen([sys.executable, "-c", script, str(src), str(out)], start_new_session=True)
    try:
        eventually(lambda: list(out.glob(".vod*.tmp.mp4")), timeout=60, what="ffmpeg writing")
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the worker and its ffmpeg, as kill -9 of a worker does
        run.wait()
    assert list(out.glob(".vod*.tmp.mp4"))  # what the killed run left
    renditions = transcode(src, probe(src), out)
    screenshot(renditions[-1].path, 1.0, out / "screenshot.jpg")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*(r.path.name for r in renditions), "screenshot.jpg"]
    )
