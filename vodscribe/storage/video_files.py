"""Where hosted videos' files live: the local data directory (default) or an S3-compatible bucket.

A video's files sit under its key ``{client_id}_{slug}``: renditions (``vod240p.mp4``), HLS playlists
and segments, ``screenshot.jpg``, ``hls.json`` (packaging facts) and ``subs/`` (subtitle playlists),
and for a while ``source/origin``, the downloaded origin its AI tasks start from
(:mod:`vodscribe.services.video_sources`; never public). Workers produce them in a local folder
(:meth:`MediaStore.producing`); subtitle changes rewrite a few small playlists
(:meth:`MediaStore.put_texts`). With S3 the bucket is the truth and any machine can do
either; URLs then point at ``s3_public_url`` (a CDN or the bucket's endpoint).
"""

from __future__ import annotations

import contextlib
import fcntl
import mimetypes
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from vodscribe.atomic import replacing, write_atomic
from vodscribe.config import Settings

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".mp4": "video/mp4",
    ".vtt": "text/vtt; charset=utf-8",
    ".jpg": "image/jpeg",
    ".json": "application/json",
}
#: Playlists change when subtitles do; segments and renditions never change once written.
NO_CACHE = (".m3u8", ".vtt", ".json")


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def cache_control(name: str) -> str:
    return "no-cache" if Path(name).suffix.lower() in NO_CACHE else "public, max-age=86400"


class MediaStore(Protocol):
    def url(self, base_url: str, key: str, relative: str) -> str:
        """The public URL of a file (``base_url`` is the API's own, used by the local store)."""

    def local_file(self, key: str, relative: str) -> Path | None:
        """The file on this machine to serve, or None (not there, or stored remotely)."""

    @contextmanager
    def producing(self, key: str, scratch: Path) -> Iterator[Path]:
        """A folder to write a video's outputs into; stored when the block succeeds."""

    @contextmanager
    def locked(self, key: str) -> Iterator[None]:
        """Serialises writers of one video's playlists on this machine."""

    def read_text(self, key: str, relative: str) -> str | None: ...

    def put_texts(self, key: str, texts: Mapping[str, str], *, prune: str | None = None) -> None:
        """Write small text files; with ``prune`` (a folder), delete that folder's other files."""

    def put_file(self, key: str, relative: str, path: Path) -> None:
        """Store a local file, streamed (it can be large), whole or not at all, and not public."""

    def fetch(self, key: str, relative: str, scratch: Path) -> Path | None:
        """A local path to read the file from (downloaded into ``scratch`` if need be), or None."""

    def delete_file(self, key: str, relative: str) -> None:
        """Remove one file (nothing happens if it is not there)."""

    def delete(self, key: str) -> None: ...

    def check(self) -> None:
        """Raise if files cannot be stored now (for the health check)."""


class LocalStore:
    """``<data_dir>/videos/<key>/``, served by the API under ``/videos/<key>/``."""

    def __init__(self, root: Path) -> None:
        self.root = root / "videos"

    def folder(self, key: str) -> Path:
        return self.root / key

    def check(self) -> None:
        if not self.root.parent.is_dir():  # the data directory itself: never re-created silently
            raise OSError(f"the data directory {self.root.parent} is missing")
        self.root.mkdir(exist_ok=True)
        write_atomic(self.root / ".health", "ok")

    def url(self, base_url: str, key: str, relative: str) -> str:
        return f"{base_url.rstrip('/')}/videos/{key}/{relative}"

    def local_file(self, key: str, relative: str) -> Path | None:
        try:
            base = self.folder(key).resolve()
            candidate = (base / relative).resolve()
            if base not in candidate.parents or not candidate.is_file():
                return None
        except (OSError, ValueError):  # a name too long for the file system, a NUL byte
            return None
        return candidate

    @contextmanager
    def producing(self, key: str, scratch: Path) -> Iterator[Path]:
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        yield folder

    @contextmanager
    def locked(self, key: str) -> Iterator[None]:
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read_text(self, key: str, relative: str) -> str | None:
        path = self.local_file(key, relative)
        return path.read_text() if path else None

    def put_texts(self, key: str, texts: Mapping[str, str], *, prune: str | None = None) -> None:
        folder = self.folder(key)
        for relative, text in texts.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, text)
        if prune:
            keep = {folder / r for r in texts}
            for path in (folder / prune).glob("*"):
                if path.is_file() and path not in keep:
                    path.unlink()

    def put_file(self, key: str, relative: str, path: Path) -> None:
        target = self.folder(key) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with replacing(target) as temp:
            try:
                os.link(path, temp)  # the scratch folder is usually on the same file system: no copy
            except OSError:
                shutil.copyfile(path, temp)

    def fetch(self, key: str, relative: str, scratch: Path) -> Path | None:
        return self.local_file(key, relative)

    def delete_file(self, key: str, relative: str) -> None:
        path = self.folder(key) / relative
        path.unlink(missing_ok=True)
        if path.parent != self.folder(key):
            with contextlib.suppress(OSError):  # not empty, or gone already
                path.parent.rmdir()

    def delete(self, key: str) -> None:
        shutil.rmtree(self.folder(key), ignore_errors=True)


class S3Store:
    """An S3-compatible bucket (AWS, MinIO, Ceph, Gcore Object Storage...) through boto3."""

    def __init__(self, settings: Settings) -> None:
        import boto3  # optional dependency: pip install 'vodscribe[s3]'

        assert settings.s3_bucket
        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix.strip("/")
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key,
            aws_secret_access_key=settings.s3_secret_key,
        )
        public = settings.s3_public_url or f"{(settings.s3_endpoint_url or '').rstrip('/')}/{self.bucket}"
        self.public = public.rstrip("/")
        self.acl = {"ACL": settings.s3_object_acl} if settings.s3_object_acl else {}

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def _key(self, key: str, relative: str = "") -> str:
        return "/".join(p for p in (self.prefix, key, relative) if p)

    def url(self, base_url: str, key: str, relative: str) -> str:
        return f"{self.public}/{self._key(key, relative)}"

    def local_file(self, key: str, relative: str) -> None:
        return None

    @contextmanager
    def producing(self, key: str, scratch: Path) -> Iterator[Path]:
        folder = scratch / "produced"
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                relative = path.relative_to(folder).as_posix()
                extra = {
                    "ContentType": content_type(relative),
                    "CacheControl": cache_control(relative),
                    **self.acl,
                }
                self.client.upload_file(str(path), self.bucket, self._key(key, relative), ExtraArgs=extra)

    @contextmanager
    def locked(self, key: str) -> Iterator[None]:
        yield  # across machines the caller holds the video's row lock (SELECT ... FOR UPDATE)

    def read_text(self, key: str, relative: str) -> str | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key, relative))["Body"]
        except self.client.exceptions.NoSuchKey:
            return None
        return str(body.read().decode())

    def put_texts(self, key: str, texts: Mapping[str, str], *, prune: str | None = None) -> None:
        for relative, text in texts.items():
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key, relative),
                Body=text.encode(),
                ContentType=content_type(relative),
                CacheControl=cache_control(relative),
                **self.acl,
            )
        if prune:
            keep = {self._key(key, r) for r in texts}
            stale = [k for k in self._list(self._key(key, prune.strip("/")) + "/") if k not in keep]
            self._delete_keys(stale)

    def put_file(self, key: str, relative: str, path: Path) -> None:
        # No ACL: private to the bucket's owner even where s3_object_acl makes video files public.
        extra = {"ContentType": "application/octet-stream"}
        self.client.upload_file(str(path), self.bucket, self._key(key, relative), ExtraArgs=extra)

    def fetch(self, key: str, relative: str, scratch: Path) -> Path | None:
        dest = scratch / Path(relative).name
        try:
            self.client.download_file(self.bucket, self._key(key, relative), str(dest))
        except Exception:
            return None
        return dest

    def delete_file(self, key: str, relative: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key, relative))

    def delete(self, key: str) -> None:
        self._delete_keys(self._list(self._key(key) + "/"))

    def _list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def _delete_keys(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})


_stores: dict[tuple[Any, ...], MediaStore] = {}


def media_store(settings: Settings) -> MediaStore:
    """The configured store (one per configuration and process)."""
    # abspath, not resolve(): resolving makes a system call per folder of the path, on every request
    # that answers a URL (25 µs against 1 µs). A store holds no state: two spellings may have two.
    key = (settings.s3_bucket, settings.s3_endpoint_url, settings.s3_prefix, settings.s3_public_url,
           settings.s3_object_acl, os.path.abspath(settings.data_dir))  # fmt: skip
    if key not in _stores:
        _stores[key] = S3Store(settings) if settings.s3_bucket else LocalStore(settings.data_dir)
    return _stores[key]
