"""vodscribe.media.hls: HLS packaging of real renditions, subtitle playlists and the master playlist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import av
import imageio_ffmpeg
import pytest

from vodscribe.media.hls import (
    MASTER,
    HlsVariant,
    SubtitleTrack,
    mpegts_start,
    package_hls,
    peak_bitrate,
    quoted_string_safe,
    read_media_playlist,
    timestamp_mapped_vtt,
    unique_names,
    write_master,
    write_subtitle_playlist,
)
from vodscribe.media.probe import probe
from vodscribe.media.transcode import Rendition, transcode

DATA = Path(__file__).parent / "data"
JFK = DATA / "jfk_librivox.mp4"  # 24.128 s, 320x240

VTT = "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.500\nAsk not what your country can do for you\n"
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"\r\n]*"|[^",]*)(?:,|$)')


def _ffmpeg(out: Path, *args: str) -> Path:
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run([*cmd, *args, str(out)], check=True, timeout=60)
    return out


def attributes(line: str) -> dict[str, str]:
    """Parse an HLS attribute list strictly: every character must belong to an attribute."""
    _, _, text = line.partition(":")
    pairs = list(_ATTRIBUTE.finditer(text))
    assert "".join(m.group(0) for m in pairs) == text, f"unparseable attribute list: {line}"
    return {m.group(1): m.group(2).strip('"') for m in pairs}


def _ts_first_pts(path: Path) -> dict[str, int]:
    """Earliest PTS per stream type in an MPEG-TS segment."""
    firsts: dict[str, int] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is not None:
                kind = packet.stream.type
                firsts[kind] = min(firsts.get(kind, packet.pts), packet.pts)
    return firsts


@pytest.fixture(scope="module")
def jfk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Rendition, HlsVariant]:
    """The 24 s speech MP4: one 240p rendition packaged as HLS."""
    root = tmp_path_factory.mktemp("jfk")
    [rendition] = transcode(JFK, probe(JFK), root / "mp4")
    hls = root / "hls"
    return hls, rendition, package_hls(rendition, hls)


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[HlsVariant]]:
    """A 3 s 640x360 video whose audio starts 1.5 s late: 240p and 360p renditions packaged as HLS."""
    root = tmp_path_factory.mktemp("multi")
    src = _ffmpeg(
        root / "src.mp4",
        *["-f", "lavfi", "-i", "testsrc=size=640x360:rate=25:duration=3"],
        *["-itsoffset", "1.5", "-f", "lavfi", "-i", "sine=frequency=440:duration=1.5:sample_rate=44100"],
        *["-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
        *["-c:a", "aac"],
    )
    renditions = transcode(src, probe(src), root / "mp4")
    hls = root / "hls"
    # packaged highest first, to check that the master lists them lowest first anyway
    return hls, [package_hls(r, hls) for r in reversed(renditions)]


# --- variants -----------------------------------------------------------------------------------------


def test_variant_playlist(jfk: tuple[Path, Rendition, HlsVariant]) -> None:
    hls, rendition, variant = jfk
    text = (hls / variant.playlist).read_text()
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U" and lines[-1] == "#EXT-X-ENDLIST"
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in lines and "#EXT-X-TARGETDURATION:6" in lines
    segments = read_media_playlist(hls / variant.playlist)
    assert [s.uri for s in segments] == [f"vod240p_{i:04d}.ts" for i in range(len(segments))]
    assert [s.duration for s in segments[:-1]] == pytest.approx([6.0] * (len(segments) - 1), abs=0.15)
    assert sum(s.duration for s in segments) == pytest.approx(rendition.duration, abs=0.2)
    for segment in segments:
        assert (hls / segment.uri).read_bytes()[:1] == b"G"  # MPEG-TS sync byte
    assert sorted(p.name for p in hls.iterdir()) == sorted([variant.playlist, *(s.uri for s in segments)])


def test_variant_attributes(jfk: tuple[Path, Rendition, HlsVariant]) -> None:
    hls, rendition, variant = jfk
    assert (variant.name, variant.playlist, variant.width, variant.height) == (
        "vod240p",
        "vod240p.m3u8",
        320,
        240,
    )
    assert re.fullmatch(r"avc1\.64[0-9a-f]{4},mp4a\.40\.2", variant.codecs)  # High profile + AAC-LC
    with av.open(str(rendition.path)) as container:
        extradata = bytes(container.streams.video[0].codec_context.extradata)
    assert variant.codecs.split(",")[0] == f"avc1.{extradata[1:4].hex()}"
    assert variant.frame_rate == pytest.approx(10.0)
    sizes = sum((hls / s.uri).stat().st_size for s in read_media_playlist(hls / variant.playlist))
    assert variant.average_bandwidth == pytest.approx(sizes * 8 / rendition.duration, rel=0.02)
    assert variant.average_bandwidth <= variant.bandwidth < 3 * variant.average_bandwidth


def test_repackaging_is_idempotent(jfk: tuple[Path, Rendition, HlsVariant], tmp_path: Path) -> None:
    _, rendition, variant = jfk
    (tmp_path / "vod240p_0099.ts").write_bytes(b"stale")
    again = package_hls(rendition, tmp_path)
    assert again.playlist == variant.playlist and again.codecs == variant.codecs
    assert not (tmp_path / "vod240p_0099.ts").exists()


def test_peak_bitrate_ignores_tiny_tail_segment() -> None:
    # four 6 s segments of 48 kB and a 0.1 s tail of 8 kB (a keyframe): the tail alone is 640 kbit/s,
    # but it only counts together with its neighbour (windows of 3 to 9 s)
    sizes, durations = [48_000] * 4 + [8_000], [6.0] * 4 + [0.1]
    assert peak_bitrate(sizes, durations, 6.0) == pytest.approx(56_000 * 8 / 6.1)
    assert peak_bitrate([1000], [1.0], 6.0) == 0  # shorter than half a segment: no window


def test_mpegts_start_maps_video_start(jfk: tuple[Path, Rendition, HlsVariant]) -> None:
    hls, _, variant = jfk
    start = mpegts_start(hls, variant)
    first = read_media_playlist(hls / variant.playlist)[0].uri
    assert start == _ts_first_pts(hls / first)["video"]
    assert 0 < start < 10 * 90_000


def test_mpegts_start_with_late_audio(multi: tuple[Path, list[HlsVariant]]) -> None:
    hls, variants = multi
    for variant in variants:
        start = mpegts_start(hls, variant)
        first = _ts_first_pts(hls / read_media_playlist(hls / variant.playlist)[0].uri)
        assert first["video"] == start
        assert (first["audio"] - start) / 90_000 == pytest.approx(1.5, abs=0.05)  # audio 1.5 s after time 0


# --- subtitles ------------------------------------------------------------------------------------------


def test_timestamp_map_header() -> None:
    text = timestamp_mapped_vtt(VTT, 126000)
    assert text.splitlines()[:3] == ["WEBVTT", "X-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000", ""]
    assert text.endswith("Ask not what your country can do for you\n")


def test_timestamp_map_normalises_and_replaces() -> None:
    vtt = (
        "\ufeffWEBVTT - JFK\r\nX-TIMESTAMP-MAP=MPEGTS:1,LOCAL:00:00:00.000\r\nKind: captions\r\n\r\n"
        "00:00.000 --> 00:01.000\r\nHi"
    )
    lines = timestamp_mapped_vtt(vtt, 900).splitlines()
    assert lines == [
        "WEBVTT - JFK",
        "X-TIMESTAMP-MAP=MPEGTS:900,LOCAL:00:00:00.000",
        "Kind: captions",
        "",
        "00:00.000 --> 00:01.000",
        "Hi",
    ]


@pytest.mark.parametrize("bad", ["1\n00:00:01,000 --> 00:00:02,000\nSRT\n", "WEBVTTX\n", ""])
def test_timestamp_map_refuses_non_webvtt(bad: str) -> None:
    with pytest.raises(ValueError, match="WebVTT"):
        timestamp_mapped_vtt(bad, 0)


def test_subtitle_playlist(jfk: tuple[Path, Rendition, HlsVariant]) -> None:
    hls, rendition, variant = jfk
    start = mpegts_start(hls, variant)
    uri = write_subtitle_playlist(
        hls, SubtitleTrack("s1", "English", "en"), VTT, duration=rendition.duration, mpegts=start
    )
    assert uri == "subs/s1.m3u8"
    lines = (hls / uri).read_text().splitlines()
    assert lines[0] == "#EXTM3U" and lines[-1] == "#EXT-X-ENDLIST"
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in lines and "#EXT-X-TARGETDURATION:25" in lines
    [segment] = read_media_playlist(hls / uri)
    assert segment.uri == "s1.vtt" and segment.duration == pytest.approx(rendition.duration, abs=0.001)
    vtt = (hls / "subs" / segment.uri).read_text()
    assert vtt.splitlines()[1] == f"X-TIMESTAMP-MAP=MPEGTS:{start},LOCAL:00:00:00.000"


@pytest.mark.parametrize(
    ("key", "language"), [("../x", "en"), ("a b", "en"), ("", "en"), ("ok", "english!"), ("ok", "")]
)
def test_subtitle_track_validation(key: str, language: str) -> None:
    with pytest.raises(ValueError):
        SubtitleTrack(key, "Name", language)


# --- master ------------------------------------------------------------------------------------------


def _master_lines(hls: Path) -> list[str]:
    return (hls / MASTER).read_text().splitlines()


def test_master_lists_variants_lowest_first(multi: tuple[Path, list[HlsVariant]]) -> None:
    hls, variants = multi
    write_master(hls, variants, [])
    lines = _master_lines(hls)
    assert lines[:2] == ["#EXTM3U", "#EXT-X-VERSION:3"]
    assert not any(line.startswith("#EXT-X-MEDIA") for line in lines)
    infs = [
        (attributes(line), lines[i + 1])
        for i, line in enumerate(lines)
        if line.startswith("#EXT-X-STREAM-INF")
    ]
    assert [uri for _, uri in infs] == ["vod240p.m3u8", "vod360p.m3u8"]
    assert [attrs["RESOLUTION"] for attrs, _ in infs] == ["426x240", "640x360"]
    by_name = {v.playlist: v for v in variants}
    for attrs, uri in infs:
        variant = by_name[uri]
        assert attrs["CODECS"] == variant.codecs and re.fullmatch(
            r"avc1\.64[0-9a-f]{4},mp4a\.40\.2", attrs["CODECS"]
        )
        assert int(attrs["BANDWIDTH"]) == variant.bandwidth
        assert int(attrs["AVERAGE-BANDWIDTH"]) == variant.average_bandwidth
        assert float(attrs["FRAME-RATE"]) == pytest.approx(25.0)
        assert "SUBTITLES" not in attrs
        assert (hls / uri).is_file()


def test_master_subtitles_added_and_removed(multi: tuple[Path, list[HlsVariant]]) -> None:
    hls, variants = multi
    start = mpegts_start(hls, variants[0])
    tracks = [
        SubtitleTrack("1", "English (AI-generated)", "en", default=True),
        SubtitleTrack("2", 'Director\'s "cut", take 2', "de"),
        SubtitleTrack("3", "English (AI-generated)", "pt-BR", default=True),
    ]
    subs = [(t, write_subtitle_playlist(hls, t, VTT, duration=3.0, mpegts=start)) for t in tracks]
    write_master(hls, variants, subs)
    lines = _master_lines(hls)
    media = [attributes(line) for line in lines if line.startswith("#EXT-X-MEDIA:")]
    assert [m["NAME"] for m in media] == [
        "English (AI-generated)",
        "Director's 'cut', take 2",
        "English (AI-generated) (2)",
    ]
    assert [m["LANGUAGE"] for m in media] == ["en", "de", "pt-BR"]
    assert [m["DEFAULT"] for m in media] == ["YES", "NO", "NO"]  # at most one default per group
    assert {(m["TYPE"], m["GROUP-ID"], m["AUTOSELECT"]) for m in media} == {("SUBTITLES", "subs", "YES")}
    assert [m["URI"] for m in media] == ["subs/1.m3u8", "subs/2.m3u8", "subs/3.m3u8"]
    infs = [attributes(line) for line in lines if line.startswith("#EXT-X-STREAM-INF")]
    assert [a["SUBTITLES"] for a in infs] == ["subs", "subs"]
    assert sorted(p.name for p in (hls / "subs").iterdir()) == [
        "1.m3u8",
        "1.vtt",
        "2.m3u8",
        "2.vtt",
        "3.m3u8",
        "3.vtt",
    ]

    # a subtitle deleted: the master is rewritten and its files go
    write_master(hls, variants, [subs[1]])
    media = [attributes(line) for line in _master_lines(hls) if line.startswith("#EXT-X-MEDIA:")]
    assert [(m["NAME"], m["URI"]) for m in media] == [("Director's 'cut', take 2", "subs/2.m3u8")]
    assert sorted(p.name for p in (hls / "subs").iterdir()) == ["2.m3u8", "2.vtt"]

    # all deleted
    write_master(hls, variants, [])
    assert not any(line.startswith("#EXT-X-MEDIA") for line in _master_lines(hls))
    assert list((hls / "subs").iterdir()) == []
    assert not [p for p in hls.iterdir() if p.name.endswith(".tmp")]


def test_quoted_string_safe() -> None:
    assert quoted_string_safe('a "b",\r\nc') == "a 'b', c"


def test_unique_names() -> None:
    assert unique_names(["A", "B", "A", "A"]) == ["A", "B", "A (2)", "A (3)"]
    assert unique_names(["A", "A", "A (2)"]) == ["A", "A (3)", "A (2)"]
