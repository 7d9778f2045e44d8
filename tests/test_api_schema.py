"""The video and subtitle routes' typed bodies, their Gcore error shapes, and what /openapi.json says
about every route (in-process: FastAPI TestClient, real SQLite, no worker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import in_process_api
from vodscribe.config import Settings

VTT = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\n"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with in_process_api(Settings(data_dir=tmp_path)) as c:
        yield c


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"video": {"name": 5}}, {"name": ["must be a string"]}),
        ({"name": "x", "client_user_id": "7"}, {"client_user_id": ["must be an integer"]}),
        ({"video": {"name": "x", "priority": True}}, {"priority": ["must be an integer"]}),
        ({"video": {"name": "x", "priority": 11}}, {"priority": ["must be between -10 and 10"]}),
        ({"video": {"name": " "}}, {"name": ["can't be blank"]}),
        ({"video": "x"}, {"base": ["must be a JSON object"]}),
        ({}, {"name": ["can't be blank"]}),
    ],
)
def test_video_field_errors_are_rails_422(client: TestClient, body: dict, errors: dict) -> None:
    r = client.post("/streaming/videos", json=body)
    assert r.status_code == 422 and r.json() == {"errors": errors}


def test_video_bodies_are_typed_and_patch_changes_only_what_is_sent(client: TestClient) -> None:
    created = client.post(
        "/streaming/videos", json={"video": {"name": "a", "description": "d", "priority": 3}}
    )
    assert created.status_code == 200, created.text
    video = created.json()
    assert (video["name"], video["description"], video["priority"], video["status"]) == ("a", "d", 3, "empty")
    assert video["iframe_url"].endswith("/embed") and video["converted_videos"] == []
    r = client.patch(f"/streaming/videos/{video['id']}", json={"name": "b"})
    assert r.status_code == 200 and (r.json()["name"], r.json()["description"]) == ("b", "d")
    r = client.patch(f"/streaming/videos/{video['id']}", json={"description": None})
    assert r.json()["description"] is None and r.json()["name"] == "b"
    assert client.patch(f"/streaming/videos/{video['id']}", json={"name": 1}).json() == {
        "errors": {"name": ["must be a string"]}
    }
    listed = client.get("/streaming/videos").json()
    assert [v["id"] for v in listed] == [video["id"]] and "iframe_url" not in listed[0]


def test_video_query_and_path_errors_are_400_with_status(client: TestClient) -> None:
    for url in ("/streaming/videos?page=0", "/streaming/videos?status=done", "/streaming/videos/abc"):
        r = client.get(url)
        assert r.status_code == 400 and r.json()["status"] == 400 and r.json()["error"], (url, r.text)
    r = client.post("/streaming/videos", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_subtitle_bodies_are_typed(client: TestClient) -> None:
    video = client.post("/streaming/videos", json={"name": "a"}).json()
    base = f"/streaming/videos/{video['id']}/subtitles"
    r = client.post(base, json={"name": "English", "language": "eng", "vtt": 5})
    assert r.status_code == 422
    assert r.json() == {"status": 422, "error": 'Unprocessable Entity. "vtt" must be a string.'}
    sub = client.post(base, json={"name": "English", "language": "eng", "vtt": VTT})
    assert sub.status_code == 200 and sub.json()["language"] == "eng" and sub.json()["vtt"] == VTT
    r = client.patch(f"{base}/{sub.json()['id']}", json={"name": "EN"})
    assert r.status_code == 200 and r.json() == {"name": "EN", "language": "eng", "vtt": VTT}
    assert client.get(f"{base}/999").json() == {"status": 404, "error": "Subtitle not found"}
    ai = client.post(base, json={"auto_transcribe_audio_language": "auto"})
    assert ai.status_code == 200
    assert ai.json() == {
        "id": None,
        "name": None,
        "language": None,
        "vtt": None,
        "ai_task_ids": [],
        "status": "scheduled after transcoding",
    }


def test_openapi_describes_every_route_truthfully(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            where = f"{method.upper()} {path}"
            success = [code for code in answers if code.startswith("2")]
            assert success, where
            if path.startswith("/streaming/"):
                assert {"400", "401"} <= set(answers), where
                for code in success:
                    if code != "204":
                        assert answers[code]["content"]["application/json"]["schema"], where
            for answer in answers.values():
                ref = answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
                assert ref != "#/components/schemas/HTTPValidationError", where
    videos = spec["paths"]["/streaming/videos"]
    assert videos["post"]["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/FieldErrors"
    )
    body = videos["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "VideoCreate" in str(body)
    one = spec["paths"]["/streaming/videos/{video_id}"]
    assert one["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/VideoOut"
    )
    assert one["get"]["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/StatusErrorBody"
    )
    ai = spec["paths"]["/streaming/ai/tasks"]["post"]["responses"]
    assert ai["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
