"""Videos end to end: a real ``vodscribe serve`` downloads, transcodes, packages HLS and attaches AI
subtitles; driven through the official Gcore SDK and plain HTTP; files checked with PyAV."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

import av
import gcore
import httpx
import imageio_ffmpeg
import pytest
from gcore import Gcore

from tests.browser import chromium_page, require_chromium
from tests.conftest import MediaServer, Service, wait_for
from tests.waiting import eventually

pytestmark = pytest.mark.slow  # every test here runs on a service whose worker loads Whisper

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


@pytest.fixture(scope="module")
def videos_dir(media_server: MediaServer) -> MediaServer:
    """Generated sources: 854x480 with a tone, a video without audio, audio starting 1.5 s late."""
    root = media_server.root
    lavfi = ["-f", "lavfi", "-i", "testsrc2=size=854x480:rate=25:duration=4"]
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:duration=4"]
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    runs = [
        [*lavfi, *tone, *x264, "-c:a", "aac", "-shortest", str(root / "wide.mp4")],
        [*lavfi, *x264, str(root / "silent-film.mp4")],
        ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=8", "-itsoffset", "1.5",
         "-i", str(root / "ldc93s1.wav"), *x264, "-c:a", "aac", str(root / "late-audio.mp4")],
    ]  # fmt: skip
    for args in runs:
        subprocess.run([FFMPEG, "-v", "error", "-y", *args], check=True)
    real = (root / "jfk_librivox.mp4").read_bytes()
    (root / "broken.mp4").write_bytes(real[: len(real) // 3])
    return media_server


def wait_video(sdk: Gcore, video_id: int, until: tuple[str, ...] = ("ready", "error"), timeout: float = 120):
    def reached():
        video = sdk.streaming.videos.get(video_id)
        assert video.status in until or (video.error and "empty" in until), video
        return video

    return eventually(reached, timeout=timeout, interval=0.3, what=f"video {video_id} in {until}")


def ready_video(sdk: Gcore, name: str, origin_url: str, **fields: object):
    """Create a video from ``origin_url`` and wait until it is ready."""
    created = sdk.streaming.videos.create(video={"name": name, "origin_url": origin_url, **fields})
    video = wait_video(sdk, created.id)
    assert video.status == "ready", video.error
    return video


def wait_subtitles(sdk: Gcore, video_id: int, count: int, timeout: float = 120) -> list:
    def enough() -> list:
        subs = sdk.streaming.videos.subtitles.list(video_id)
        assert len(subs) >= count, subs
        return subs

    return eventually(enough, timeout=timeout, interval=0.3, what=f"video {video_id} with {count} subtitles")


def test_video_with_speech_gets_hls_renditions_and_ai_subtitles(
    sdk: Gcore, service: Service, media_server: MediaServer
) -> None:
    created = sdk.streaming.videos.create(
        video={"name": "JFK", "origin_url": media_server.url("jfk_librivox.mp4"), "client_user_id": 7}
    )
    assert created.id and created.status in ("empty", "pending")
    video = wait_video(sdk, created.id)
    assert video.status == "ready", video.error
    assert 23_000 <= video.duration <= 25_000  # milliseconds
    assert video.client_user_id == 7
    [rendition] = video.converted_videos  # the source is 320x240: no upscaling
    assert (rendition.name, rendition.width, rendition.height, rendition.status) == (
        "vod240p",
        320,
        240,
        "complete",
    )
    assert rendition.size and rendition.size > 10_000 and rendition.progress == 100
    with httpx.Client(timeout=30) as http:
        mp4 = http.get(rendition.mp4_url, headers={"Range": "bytes=0-99"})
        assert mp4.status_code == 206 and len(mp4.content) == 100
        assert mp4.headers["content-type"] == "video/mp4"
        assert http.get(rendition.mp4_url, headers={"Range": "bytes=999999999-"}).status_code == 416
        assert http.head(rendition.mp4_url).status_code == 200
        shot = http.get(video.screenshot)
        assert shot.status_code == 200 and shot.content[:3] == b"\xff\xd8\xff"
        master = http.get(video.hls_url)
        assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
    # auto_transcribe_audio_language defaults to "auto": an English subtitle gets attached
    [sub] = wait_subtitles(sdk, video.id, 1)
    assert sub.name == "English (AI-generated)" and sub.language == "eng"
    assert "fellow americans, ask not what" in sub.vtt.lower() and "your country" in sub.vtt.lower()
    tasks = [t for t in sdk.streaming.ai_tasks.list(limit=100) if t.task_data.url == rendition.mp4_url]
    assert len(tasks) == 1 and tasks[0].status == "SUCCESS"
    assert f'"video_id": {video.id}' in tasks[0].task_data.client_entity_data
    # Requested as soon as the origin was checked, before the video was ready (its updated_at); the
    # origin kept for the task is deleted once the task and the job have both ended.
    with sqlite3.connect(service.data_dir / "vodscribe.db") as db:
        query = "select t.created_at < v.updated_at from ai_tasks t join videos v on v.id = t.video_id"
        assert db.execute(f"{query} where t.id = ?", (tasks[0].task_id,)).fetchone() == (1,)
    source = service.data_dir / "videos" / f"{video.client_id}_{video.slug}" / "source"
    eventually(lambda: not source.exists(), timeout=30, interval=0.2, what="the kept origin deleted")
    # A client's own AI task on the mp4_url (as Gcore documents) works and attaches nothing.
    own = sdk.streaming.ai_tasks.create(task_name="transcription", url=rendition.mp4_url)
    with httpx.Client(base_url=service.base_url, headers=service.headers()) as api:
        done = wait_for(api, own.task_id)
    assert done["status"] == "SUCCESS" and "fellow Americans" in done["result"]["concatenated_text"]
    assert len(sdk.streaming.videos.subtitles.list(video.id)) == 1
    with httpx.Client(timeout=30) as http:
        master = http.get(video.hls_url).text
        assert "#EXT-X-MEDIA:TYPE=SUBTITLES" in master and 'NAME="English (AI-generated)"' in master
        assert 'LANGUAGE="en"' in master and 'SUBTITLES="subs"' in master
        uri = master.split('URI="')[1].split('"')[0]
        base = video.hls_url.rsplit("/", 1)[0]
        playlist = http.get(f"{base}/{uri}").text
        vtt_uri = next(line for line in playlist.splitlines() if line.endswith(".vtt"))
        vtt = http.get(f"{base}/{uri.rsplit('/', 1)[0]}/{vtt_uri}")
        assert vtt.headers["content-type"].startswith("text/vtt")
        assert "X-TIMESTAMP-MAP=MPEGTS:" in vtt.text and "fellow Americans" in vtt.text
        page = http.get(video.iframe_url)
        assert page.status_code == 200 and "hls.min.js" in page.text
        assert "Content-Security-Policy" in page.headers
    # The embed page plays the HLS in a real browser and shows the AI subtitle's words.
    require_chromium()
    with chromium_page() as browser:
        browser.navigate(f"{video.iframe_url}?autoplay=1&muted=1&sub_lang=en")
        browser.wait_for("document.body.dataset.state === 'playing'", timeout=20)
        cue = browser.wait_for(
            "(t => t.includes('fellow Americans') && t)(document.getElementById('cue').textContent)",
            timeout=20,
        )
        assert "ask not what" in cue
        menu = browser.evaluate("document.body.innerText")
        assert "English (AI-generated)" in menu


def test_renditions_ladder_never_upscales(sdk: Gcore, videos_dir: MediaServer) -> None:
    video = ready_video(sdk, "wide", videos_dir.url("wide.mp4"), auto_transcribe_audio_language="disable")
    got = [(r.name, r.width, r.height) for r in video.converted_videos]
    assert got == [("vod240p", 428, 240), ("vod360p", 640, 360), ("vod480p", 854, 480)]
    with httpx.Client(timeout=30) as http:
        master = http.get(video.hls_url).text
        assert master.count("#EXT-X-STREAM-INF") == 3 and "RESOLUTION=854x480" in master
        assert "#EXT-X-MEDIA" not in master
        for r in video.converted_videos:
            data = http.get(r.mp4_url).content
            path = Path(f"/tmp/vodscribe-test-{r.name}.mp4")
            path.write_bytes(data)
            with av.open(str(path)) as c:
                assert c.streams.video[0].codec_context.name == "h264"
                audio = c.streams.audio[0]
                assert audio.codec_context.name == "aac" and audio.sample_rate == 48000
                assert 50_000 <= audio.bit_rate <= 80_000
            path.unlink()
    assert sdk.streaming.videos.subtitles.list(video.id) == []


def test_video_without_audio_is_ready_without_subtitles(
    sdk: Gcore, service: Service, videos_dir: MediaServer
) -> None:
    video = ready_video(sdk, "silent", videos_dir.url("silent-film.mp4"))
    time.sleep(1)
    assert sdk.streaming.videos.subtitles.list(video.id) == []
    r = httpx.post(
        f"{service.base_url}/streaming/videos/{video.id}/subtitles",
        json={"auto_transcribe_audio_language": "auto"},
        headers=service.headers(),
    )
    assert r.status_code == 422 and "no audio" in r.json()["error"]


def test_late_audio_keeps_cue_times_on_the_video_clock(sdk: Gcore, videos_dir: MediaServer) -> None:
    created = sdk.streaming.videos.create(
        video={
            "name": "late",
            "origin_url": videos_dir.url("late-audio.mp4"),
            "auto_transcribe_audio_language": "eng",
        }
    )
    wait_video(sdk, created.id)
    [sub] = wait_subtitles(sdk, created.id, 1)
    first = sub.vtt.split("-->")[0].strip().splitlines()[-1]
    # ldc93s1 speech starts ~0.2 s into the clip, which itself starts 1.5 s after the picture
    assert "00:00:01.5" <= first <= "00:00:02.3", sub.vtt


@pytest.mark.parametrize(
    ("name", "status", "fragment"),
    [
        ("broken.mp4", "error", "damaged"),
        ("watch?v=dQw4w9WgXcQ", "empty", "HTML"),
        ("nothing.mp4", "empty", "404"),
    ],
)
def test_bad_origins_end_with_a_clear_error(
    sdk: Gcore, videos_dir: MediaServer, service: Service, name: str, status: str, fragment: str
) -> None:
    created = sdk.streaming.videos.create(video={"name": name, "origin_url": videos_dir.url(name)})
    video = eventually(
        lambda: (v := sdk.streaming.videos.get(created.id)).error is not None and v,
        timeout=60,
        interval=0.3,
        what=f"video {created.id} with an error",
    )
    assert video.status == status and fragment in video.error
    assert not (service.data_dir / "work" / f"video-{created.id}").exists()


def test_subtitles_crud_and_validation(sdk: Gcore, service: Service, media_server: MediaServer) -> None:
    video = ready_video(
        sdk, "subs", media_server.url("jfk_librivox.mp4"), auto_transcribe_audio_language="disable"
    )
    vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nBonjour & bienvenue\n"
    sub = sdk.streaming.videos.subtitles.create(
        video.id, body={"language": "fre", "vtt": vtt, "name": "Français"}
    )
    assert (sub.name, sub.language, sub.vtt) == ("Français", "fre", vtt)
    srt = "1\n00:00:01,000 --> 00:00:02,500\nHallo\n"
    second = sdk.streaming.videos.subtitles.create(video.id, body={"language": "de", "vtt": srt})
    assert (second.name, second.language) == ("German", "ger")
    patched = sdk.streaming.videos.subtitles.update(second.id, video_id=video.id, language="ltz")
    assert patched.language == "ltz" and patched.vtt == srt
    got = sdk.streaming.videos.subtitles.get(second.id, video_id=video.id)
    assert got.id == second.id and got.language == "ltz"
    with httpx.Client(timeout=30) as http:
        master = http.get(video.hls_url).text
        assert 'NAME="Français",LANGUAGE="fr"' in master and 'LANGUAGE="lb"' in master
    sdk.streaming.videos.subtitles.delete(second.id, video_id=video.id)
    assert [s.id for s in sdk.streaming.videos.subtitles.list(video.id)] == [sub.id]
    with httpx.Client(timeout=30) as http:
        assert 'LANGUAGE="lb"' not in http.get(video.hls_url).text
    bad = [
        (
            {"language": "fre", "vtt": "WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nbackwards\n"},
            "Invalid subtitles",
        ),
        ({"language": "fre", "vtt": "just text"}, "Invalid subtitles"),
        ({"language": "xx1", "vtt": vtt}, "Language code is not recognized"),
        ({"vtt": vtt}, "Language code is not recognized"),
    ]
    for body, message in bad:
        with pytest.raises(gcore.UnprocessableEntityError) as err:
            sdk.streaming.videos.subtitles.create(video.id, body=body)
        assert message in err.value.response.json()["error"]
    with pytest.raises(gcore.NotFoundError):
        sdk.streaming.videos.subtitles.get(999999, video_id=video.id)


def test_video_crud_list_and_isolation(sdk: Gcore, service: Service, media_server: MediaServer) -> None:
    with pytest.raises(gcore.UnprocessableEntityError) as err:
        sdk.streaming.videos.create(video={"description": "no name"})
    assert err.value.response.json() == {"errors": {"name": ["can't be blank"]}}
    headers = service.headers()
    flat = httpx.post(f"{service.base_url}/streaming/videos", json={"name": "flat body"}, headers=headers)
    assert flat.status_code == 200 and flat.json()["status"] == "empty"
    flat_id = flat.json()["id"]
    updated = sdk.streaming.videos.update(flat_id, name="renamed", description="d", client_user_id=99)
    assert (updated.name, updated.description, updated.client_user_id) == ("renamed", "d", 99)
    listed = sdk.streaming.videos.list(client_user_id=99)
    assert [v.id for v in listed] == [flat_id]
    assert [v.id for v in sdk.streaming.videos.list(search="renamed")] == [flat_id]
    page = httpx.get(f"{service.base_url}/streaming/videos", params={"per_page": 1}, headers=headers)
    assert len(page.json()) == 1 and int(page.headers["x-total-count"]) >= 2
    other_key = service.new_key("someone else")
    other = Gcore(api_key=other_key, base_url=service.base_url, max_retries=0)
    assert list(other.streaming.videos.list()) == []
    with pytest.raises(gcore.NotFoundError):
        other.streaming.videos.get(flat_id)
    with pytest.raises(gcore.NotFoundError):
        other.streaming.videos.subtitles.list(flat_id)
    with pytest.raises(gcore.NotFoundError):
        other.streaming.videos.delete(flat_id)
    sdk.streaming.videos.delete(flat_id)
    with pytest.raises(gcore.NotFoundError):
        sdk.streaming.videos.get(flat_id)


def test_delete_removes_files(sdk: Gcore, service: Service, videos_dir: MediaServer) -> None:
    video = ready_video(sdk, "gone", videos_dir.url("wide.mp4"), auto_transcribe_audio_language="disable")
    folder = service.data_dir / "videos" / f"{video.client_id}_{video.slug}"
    assert (folder / "master.m3u8").is_file()
    sdk.streaming.videos.delete(video.id)
    assert not folder.exists()
    assert httpx.get(video.hls_url).status_code == 404
    assert httpx.get(video.converted_videos[0].mp4_url).status_code == 404


def test_ai_subtitles_requested_for_an_existing_video(
    sdk: Gcore, service: Service, media_server: MediaServer
) -> None:
    video = ready_video(
        sdk, "later", media_server.url("jfk_librivox.mp4"), auto_transcribe_audio_language="disable"
    )
    assert sdk.streaming.videos.subtitles.list(video.id) == []
    # The SDK types the body as name/language/vtt; the AI fields go in extra_body (docs/gcore-api.md §8 A7).
    r = httpx.post(
        f"{service.base_url}/streaming/videos/{video.id}/subtitles",
        json={"auto_transcribe_audio_language": "eng", "auto_translate_subtitles_language": "fre,eng"},
        headers=service.headers(),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["language"] == "eng" and len(body["ai_task_ids"]) == 2  # eng->eng is not a translation
    with httpx.Client(base_url=service.base_url, headers=service.headers()) as api:
        transcription, translation = (wait_for(api, task_id) for task_id in body["ai_task_ids"])
    assert transcription["status"] == "SUCCESS"
    assert translation["status"] == "SUCCESS", translation
    assert translation["result"]["languages"] == ["eng", "fre"]
    subs = {sub.name: sub for sub in wait_subtitles(sdk, video.id, 2)}
    assert sorted(subs) == ["English (AI-generated)", "French (AI-translated)"]
    french = subs["French (AI-translated)"]
    assert french.language == "fre"
    assert "pays" in french.vtt.lower(), french.vtt  # "...for your country" -> "...pour votre pays"
    english_times = [line for line in subs["English (AI-generated)"].vtt.splitlines() if "-->" in line]
    french_times = [line for line in french.vtt.splitlines() if "-->" in line]
    assert french_times[0][:8] == english_times[0][:8]  # starts when the speech starts
    with httpx.Client(timeout=30) as http:  # both tracks are in the HLS master, each with its language
        master = http.get(video.hls_url).text
    assert 'NAME="French (AI-translated)",LANGUAGE="fr"' in master
    assert 'NAME="English (AI-generated)"' in master


def test_auto_language_video_translated_into_its_own_language_gets_no_duplicate_track(
    sdk: Gcore, service: Service, media_server: MediaServer
) -> None:
    """Spoken language detected, targets eng+fre: the English "translation" of English speech is
    not attached a second time; French is."""
    video = ready_video(
        sdk,
        "auto-translate",
        media_server.url("jfk_librivox.mp4"),
        auto_transcribe_audio_language="auto",
        auto_translate_subtitles_language="eng,fre",
    )
    url = video.converted_videos[0].mp4_url
    with httpx.Client(base_url=service.base_url, headers=service.headers()) as api:

        def three_tasks() -> list[str]:
            listed = api.get("/streaming/ai/tasks", params={"limit": 100}).json()["results"]
            ids = [t["task_id"] for t in listed if t["task_data"]["url"] == url]
            assert len(ids) == 3, ids
            return ids

        ids = eventually(three_tasks, timeout=60, interval=0.3, what="3 AI tasks for the rendition")
        tasks = [wait_for(api, task_id) for task_id in ids]
    assert len(tasks) == 3 and all(t["status"] == "SUCCESS" for t in tasks), tasks
    english_target = next(t for t in tasks if t["task_data"].get("subtitles_language") == "eng")
    assert english_target["result"]["languages"] == ["eng"]
    subs = wait_subtitles(sdk, video.id, 2)
    time.sleep(1.0)  # nothing more arrives
    names = sorted(sub.name for sub in sdk.streaming.videos.subtitles.list(video.id))
    assert names == ["English (AI-generated)", "French (AI-translated)"], names
    assert len(subs) == 2


def test_a_batch_video_is_processed_with_its_clip_and_subtitles(
    sdk: Gcore, service: Service, media_server: MediaServer
) -> None:
    """``create_multiple`` on the real service: the worker transcodes the clip only, and the batch's
    subtitle is in the HLS master once the video is ready."""
    vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nChapter two\n"
    first, second = sdk.streaming.videos.create_multiple(
        videos=[
            {
                "name": "batch clip",
                "origin_url": media_server.url("jfk_librivox.mp4"),
                "clip_start_seconds": 12,
                "clip_duration_seconds": 8,
                "auto_transcribe_audio_language": "disable",
                "subtitles": [{"name": "Notes", "language": "eng", "vtt": vtt}],
            },
            {"name": "batch empty"},
        ],
        fields="id,name,status",
    )
    assert (first.name, first.status, second.name, second.status) == (
        "batch clip",
        "empty",
        "batch empty",
        "empty",
    )
    video = wait_video(sdk, first.id)
    assert video.status == "ready", video.error
    assert 7_800 <= video.duration <= 8_200
    [sub] = sdk.streaming.videos.subtitles.list(video.id)
    assert (sub.name, sub.vtt) == ("Notes", vtt)
    with httpx.Client(timeout=30) as http:
        master = http.get(video.hls_url).text
    assert 'NAME="Notes",LANGUAGE="en"' in master
    assert sdk.streaming.videos.get(second.id).status == "empty"
