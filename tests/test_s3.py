"""Video files in an S3-compatible bucket: moto's S3 server on 127.0.0.1 as the object store."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import httpx
import pytest
from gcore import Gcore

from tests.conftest import BUCKET, S3_CREDENTIALS, MediaServer, Service, start_service, stop_service
from tests.waiting import eventually

pytestmark = pytest.mark.slow  # a vodscribe serve whose worker loads Whisper


@pytest.fixture(scope="module")
def s3_service(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[Service]:
    svc = start_service(
        tmp_path_factory.mktemp("s3"),
        {
            "VODSCRIBE_S3_BUCKET": BUCKET,
            "VODSCRIBE_S3_ENDPOINT_URL": s3_endpoint,
            "VODSCRIBE_S3_ACCESS_KEY": "test",
            "VODSCRIBE_S3_SECRET_KEY": "test",
            "VODSCRIBE_S3_OBJECT_ACL": "public-read",  # the files are public, as on a CDN
        },
    )
    yield svc
    stop_service(svc)


def _objects(endpoint: str, prefix: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=endpoint, **S3_CREDENTIALS)
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def test_video_files_live_in_the_bucket(
    s3_service: Service, s3_endpoint: str, media_server: MediaServer
) -> None:
    sdk = Gcore(api_key=s3_service.api_key, base_url=s3_service.base_url, max_retries=0)
    created = sdk.streaming.videos.create(
        video={"name": "s3", "origin_url": media_server.url("jfk_librivox.mp4")}
    )

    def done():
        video = sdk.streaming.videos.get(created.id)
        assert video.status in ("ready", "error"), video
        return video

    video = eventually(done, timeout=120, interval=0.3, what=f"video {created.id} ready")
    assert video.status == "ready", video.error
    key = f"{video.client_id}_{video.slug}"
    assert video.hls_url == f"{s3_endpoint}/{BUCKET}/videos/{key}/master.m3u8"
    objects = _objects(s3_endpoint, f"videos/{key}/")
    assert f"videos/{key}/vod240p.mp4" in objects and f"videos/{key}/screenshot.jpg" in objects
    assert any(o.endswith(".ts") for o in objects)
    assert not (s3_service.data_dir / "videos" / key).exists(), "nothing kept on the local disk"
    # the AI subtitle is made from the rendition in the bucket and published there
    subs = eventually(
        lambda: sdk.streaming.videos.subtitles.list(video.id),
        timeout=120,
        interval=0.3,
        what=f"an AI subtitle on video {video.id}",
    )
    assert subs[0].name == "English (AI-generated)"
    # the origin kept for the AI task went once the task and the job had both ended
    eventually(
        lambda: not [o for o in _objects(s3_endpoint, f"videos/{key}/") if "/source/" in o],
        timeout=30,
        interval=0.3,
        what="the stored origin deleted",
    )
    with httpx.Client(timeout=30) as http:
        master = http.get(video.hls_url)
        assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
        assert 'NAME="English (AI-generated)"' in master.text
        mp4 = http.get(video.converted_videos[0].mp4_url, headers={"Range": "bytes=0-9"})
        assert mp4.status_code == 206 and len(mp4.content) == 10
        # the API's own file URLs redirect to the bucket
        api_url = f"{s3_service.base_url}/videos/{key}/master.m3u8"
        redirect = http.get(api_url)
        assert redirect.status_code == 302 and redirect.headers["location"] == video.hls_url
    # a deleted subtitle disappears from the bucket too
    sdk.streaming.videos.subtitles.delete(subs[0].id, video_id=video.id)
    assert not [o for o in _objects(s3_endpoint, f"videos/{key}/subs/")]
    assert "EXT-X-MEDIA" not in httpx.get(video.hls_url).text
    sdk.streaming.videos.delete(video.id)
    assert _objects(s3_endpoint, f"videos/{key}/") == []
