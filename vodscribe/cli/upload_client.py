"""``vodscribe upload``'s client side: create a video on a vodscribe (or Gcore) API, get its direct
upload parameters, and send the file with TUS 1.0.

Resumable: every chunk carries a sha1 ``Upload-Checksum``; after a network error, a 5xx or a 423 the
client asks the server (HEAD) where the upload stands and goes on from there, a few times; and a small
state file per local file (its path, size and modification time) remembers the video and the upload
URL, so running the same command again after an interruption resumes the same upload of the same
video instead of starting over.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from vodscribe.atomic import write_atomic

TUS = {"Tus-Resumable": "1.0.0"}
RETRIES = 3


class UploadFailed(Exception):
    """The upload cannot go on; the message says why (the server's own where it gave one)."""


@dataclass(frozen=True, slots=True)
class _Saved:
    video_id: int
    upload_url: str


def state_file(state_dir: Path, path: Path) -> Path:
    """Where the upload of ``path`` (as it is now: same size and modification time) is remembered."""
    stat = path.stat()
    ident = f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return state_dir / (hashlib.sha256(ident.encode()).hexdigest()[:32] + ".json")


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return f"{response.status_code}: {body['error']}"
    if isinstance(body, dict) and isinstance(body.get("errors"), dict):
        return f"{response.status_code}: {json.dumps(body['errors'])}"
    return f"{response.status_code} {response.reason_phrase}"


def _ok(response: httpx.Response, *codes: int) -> httpx.Response:
    if response.status_code not in codes:
        raise UploadFailed(f"{response.request.method} {response.request.url.path}: {_message(response)}")
    return response


def _metadata(values: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def upload_file(
    api: httpx.Client,
    path: Path,
    name: str,
    *,
    state_dir: Path,
    chunk_size: int = 8 * 1024 * 1024,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    retry_delay_s: float = 1.0,
) -> dict[str, Any]:
    """Upload ``path`` as a video named ``name`` through ``api`` (base URL and API key set); returns
    the video as the API shows it once the file is in. The TUS requests go without the API key (the
    upload token and the upload's URL are their credentials)."""
    with httpx.Client(timeout=api.timeout) as tus:
        video_id = _upload(api, tus, path, name, state_dir, chunk_size, on_progress, retry_delay_s)
    return dict(_ok(api.get(f"/streaming/videos/{video_id}"), 200).json())


def _upload(
    api: httpx.Client,
    http: httpx.Client,
    path: Path,
    name: str,
    state_dir: Path,
    chunk_size: int,
    on_progress: Callable[[int, int], None],
    retry_delay_s: float,
) -> int:
    size = path.stat().st_size
    saved_at = state_file(state_dir, path)
    url, video_id, offset = _resume(http, saved_at)
    if url is None:
        url, video_id = _start(api, http, path, name, size, video_id)
        state_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(saved_at, json.dumps(asdict(_Saved(video_id, url))))
        offset = 0
    on_progress(offset, size)
    failures = 0
    with path.open("rb") as source:
        while offset < size:
            source.seek(offset)
            chunk = source.read(chunk_size)
            checksum = "sha1 " + base64.b64encode(hashlib.sha1(chunk).digest()).decode()
            headers = {
                **TUS,
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(offset),
                "Upload-Checksum": checksum,
            }
            response: httpx.Response | None
            try:
                response = http.patch(url, content=chunk, headers=headers)
            except httpx.TransportError as exc:
                response, problem = None, str(exc) or type(exc).__name__
            else:
                problem = _message(response)
            if response is not None and response.status_code == 204:
                offset = int(response.headers["upload-offset"])
                failures = 0
                on_progress(offset, size)
                continue
            retriable = (
                response is None or response.status_code in (409, 423, 460) or response.status_code >= 500
            )
            failures += 1
            if not retriable or failures > RETRIES:
                raise UploadFailed(f"the upload stopped at byte {offset} of {size}: {problem}")
            time.sleep(retry_delay_s * failures)
            offset = _offset(http, url)  # where the server stands now
    saved_at.unlink(missing_ok=True)
    assert video_id is not None
    return video_id


def _resume(http: httpx.Client, saved_at: Path) -> tuple[str | None, int | None, int]:
    """The remembered upload if the server still has it: (url, video id, offset); else (None, the
    remembered video or None, 0)."""
    try:
        saved = _Saved(**json.loads(saved_at.read_text()))
    except (OSError, ValueError, TypeError):
        return None, None, 0
    try:
        return saved.upload_url, saved.video_id, _offset(http, saved.upload_url)
    except (UploadFailed, httpx.TransportError):
        return None, saved.video_id, 0


def _offset(http: httpx.Client, url: str) -> int:
    return int(_ok(http.head(url, headers=TUS), 200).headers["upload-offset"])


def _start(
    api: httpx.Client, http: httpx.Client, path: Path, name: str, size: int, video_id: int | None
) -> tuple[str, int]:
    """A new upload, for the remembered video if it still takes one, else for a new video."""
    params = api.get(f"/streaming/videos/{video_id}/upload") if video_id is not None else None
    if params is None or params.status_code != 200:
        created = _ok(api.post("/streaming/videos", json={"video": {"name": name}}), 200, 201).json()
        video = created[0] if isinstance(created, list) else created
        params = _ok(api.get(f"/streaming/videos/{video['id']}/upload"), 200)
    body = params.json()
    video = body["video"]
    scheme = urlsplit(str(api.base_url)).scheme or "https"
    endpoint = f"{scheme}://{body['servers'][0]['hostname']}/upload/"
    metadata = {
        "filename": os.path.basename(path),
        "token": body["token"],
        "video_id": str(video["id"]),
        "client_id": str(video["client_id"]),
    }
    headers = {**TUS, "Upload-Length": str(size), "Upload-Metadata": _metadata(metadata)}
    created_upload = _ok(http.post(endpoint, headers=headers), 201)
    return created_upload.headers["location"], int(video["id"])
