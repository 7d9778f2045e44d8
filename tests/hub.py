"""A model hub on 127.0.0.1 that the real ``huggingface_hub`` client talks to (its endpoint setting).

It serves the few routes a pull uses, as the Hugging Face hub answers them:

* ``GET /api/models/{repo}/revision/{rev}``: the repository's commit and file list (``model_info``);
* ``GET /api/models/{repo}/tree/{rev}?recursive=true``: the file tree (``snapshot_download``);
* ``HEAD|GET /{repo}/resolve/{rev}/{path}``: a file with ``X-Repo-Commit`` and its hash as the hub
  gives it (``X-Linked-Etag``: SHA-256 of a large file; ``ETag``: git blob SHA-1 of a small one),
  ``Range`` requests answered 206.

Repositories are made by the tests (:meth:`Hub.publish`); each publish is a new commit. A file can
be set to cut the connection after some bytes (:meth:`Hub.cut`) or to arrive damaged once
(:meth:`Hub.damage`), and every request is recorded. As a hostile or broken server, the hub can
also redirect large files to another origin (``http://localhost:{port}/cdn/...``, as the hub
redirects LFS files to its CDN), ignore ``Range``, or send more bytes than it announced.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from tests.conftest import free_port


@dataclass
class Repo:
    commit: str
    files: dict[str, bytes]


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    host: str = ""
    authorization: str | None = None


@dataclass
class Hub:
    port: int
    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    cuts: dict[str, list[int]] = field(default_factory=dict)
    """path -> byte counts: each GET of that file sends at most the next count, then hangs up."""
    damaged: set[str] = field(default_factory=set)
    """File names whose next GET sends one byte changed (a transfer gone wrong)."""
    cdn: bool = False
    """Large (LFS) files are answered 302 to another origin, as the hub sends them to its CDN."""
    ignore_range: set[str] = field(default_factory=set)
    """File names whose GETs start from byte 0 whatever their ``Range``."""
    grow: dict[str, int] = field(default_factory=dict)
    """File names whose GETs send this many bytes more than HEAD announced."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def publish(self, repo: str, files: dict[str, bytes]) -> str:
        """Make ``files`` the new commit of ``repo``; returns the commit hash."""
        digest = hashlib.sha1(repo.encode())
        for name in sorted(files):
            digest.update(name.encode() + hashlib.sha256(files[name]).digest())
        commit = digest.hexdigest()
        self.repos[repo] = Repo(commit, dict(files))
        return commit

    def cut(self, path: str, *after: int) -> None:
        self.cuts[path] = list(after)

    def damage(self, name: str) -> None:
        self.damaged.add(name)

    def gets(self, path_suffix: str) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and r.path.endswith(path_suffix)]


#: Files this large are served as the hub serves LFS files (ETag: SHA-256); smaller ones as git
#: blobs (ETag: the blob's SHA-1).
LFS_FROM = 1024 * 1024

_INFO = re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
_TREE = re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")
_RESOLVE = re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_CDN = re.compile(r"/cdn/(?P<repo>[^/]+/[^/]+)/(?P<rev>[^/]+)/(?P<path>.+)$")


def _handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _repo(self, name: str, rev: str | None) -> Repo | None:
            repo = hub.repos.get(name)
            if repo is None or rev not in (None, "main", repo.commit):
                return None
            return repo

        def _json(self, body: object, status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _missing(self, what: str) -> None:
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound" if "repo" in what else "EntryNotFound")
            self.send_header("X-Error-Message", what)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append(
                Request(
                    self.command,
                    path,
                    self.headers.get("Range"),
                    self.headers.get("Host", ""),
                    self.headers.get("Authorization"),
                )
            )
            if m := _TREE.match(path):
                repo = self._repo(m["repo"], m["rev"])
                if repo is None:
                    return self._missing("repo not found")
                return self._json(
                    [
                        {
                            "type": "file",
                            "oid": hashlib.sha1(data).hexdigest(),
                            "size": len(data),
                            "path": name,
                            "lfs": {
                                "oid": hashlib.sha256(data).hexdigest(),
                                "size": len(data),
                                "pointerSize": 134,
                            },
                        }
                        for name, data in sorted(repo.files.items())
                    ]
                )
            if m := _INFO.match(path):
                repo = self._repo(m["repo"], m["rev"])
                if repo is None:
                    return self._missing("repo not found")
                return self._json(
                    {
                        "_id": m["repo"],
                        "id": m["repo"],
                        "modelId": m["repo"],
                        "sha": repo.commit,
                        "private": False,
                        "siblings": [{"rfilename": name} for name in sorted(repo.files)],
                    }
                )
            if (m := _RESOLVE.match(path)) or (m := _CDN.match(path)):
                repo = self._repo(m["repo"], m["rev"])
                if repo is None:
                    return self._missing("repo not found")
                data = repo.files.get(m["path"])
                if data is None:
                    return self._missing("entry not found")
                if hub.cdn and path.startswith(f"/{m['repo']}/") and len(data) >= LFS_FROM:
                    return self._to_cdn(m["repo"], repo, m["path"], data)
                return self._file(path, repo, data)
            return self._missing("repo not found")

        def _to_cdn(self, name: str, repo: Repo, path: str, data: bytes) -> None:
            """As the hub answers a large file: 302 to its CDN, another origin, with the file's hash."""
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{hub.port}/cdn/{name}/{repo.commit}/{path}")
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _file(self, path: str, repo: Repo, data: bytes) -> None:
            name = path.rsplit("/", 1)[-1]
            start = 0
            if (rng := self.headers.get("Range")) and (m := re.fullmatch(r"bytes=(\d+)-", rng.strip())):
                start = 0 if name in hub.ignore_range else int(m[1])
            body = data[start:]
            if self.command == "GET" and name in hub.grow:
                body += b"\0" * hub.grow[name]
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", repo.commit)
            if len(data) >= LFS_FROM:  # as the hub: an LFS file's ETag is its SHA-256
                self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("X-Linked-Size", str(len(data)))
            else:  # a file in git: its blob's SHA-1
                blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
                self.send_header("ETag", f'"{blob}"')
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if self.command == "HEAD":
                return
            if name in hub.damaged:
                hub.damaged.discard(name)
                body = bytes([body[0] ^ 1]) + body[1:]
            cuts = hub.cuts.get(name)
            if cuts:
                limit = cuts.pop(0)
                self.wfile.write(body[:limit])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextmanager
def running_hub() -> Iterator[Hub]:
    hub = Hub(free_port())
    server = ThreadingHTTPServer(("127.0.0.1", hub.port), _handler(hub))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
