"""``vodscribe models pull``: fetch a catalogue model through ``huggingface_hub`` into the store.

The hub client (``huggingface_hub``) resolves the revision to a commit, lists the files, builds
their URLs and headers (``HF_TOKEN``) and reads each file's size. The files are fetched into
``DATA_DIR/models/.partial/NAME`` as ``.part`` files that a ``Range`` request resumes, after a cut
connection and in a later run (:func:`fetch_file`); then hashed, checked against the lock file when
the name was pulled before (the same commit, the same bytes), converted to CTranslate2 for
checkpoint entries, and only then moved into place and recorded: a pull that fails leaves the last
good copy and the lock as they were.

``HF_HUB_OFFLINE`` refuses to pull (load from a copied ``DATA_DIR/models`` instead);
``VODSCRIBE_HF_ENDPOINT`` (or the hub client's own ``HF_ENDPOINT``) names a mirror.

What a hub or mirror answers is untrusted: a file name must be a plain relative path (no ``..``, no
absolute path, no backslash or control character) or the pull is refused; the hub token is sent to
the hub's own origin only, never to the host a large file is redirected to (its CDN); and a server
that keeps sending more than it announced, or ignores ``Range`` while cutting the connection, makes
the pull fail after a bounded number of requests, with the reason.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

import httpx
from tqdm import tqdm

from vodscribe.models.catalogue import CatalogueModel
from vodscribe.models.store import LockedFile, LockEntry, ModelError, ModelStore, hash_files

log = logging.getLogger(__name__)

PARTIAL = ".partial"


class PullError(ModelError):
    """A pull that could not finish; what was fetched so far stays for the next try."""


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


#: One part of a file name a hub may give: no control characters, no backslash (a separator on
#: Windows), and not ``.`` or ``..``.
_PART = re.compile(r"[^\x00-\x1f\x7f\\/]+")


def safe_name(name: str) -> bool:
    """Whether a file name from a hub is a plain relative path that stays inside its folder."""
    parts = name.split("/")
    return len(name) <= 1024 and all(_PART.fullmatch(p) and p not in (".", "..") for p in parts)


def _glob(name: str, pattern: str) -> bool:
    """``fnmatch`` part by part: ``*`` never spans a ``/`` (``*.json`` is not ``x/../../y.json``)."""
    names, patterns = name.split("/"), pattern.split("/")
    return len(names) == len(patterns) and all(
        fnmatch.fnmatchcase(n, p) for n, p in zip(names, patterns, strict=True)
    )


def _matching(files: list[str], patterns: tuple[str, ...]) -> list[str]:
    """The repository's files that ``patterns`` name; of a checkpoint published both ways, only the
    safetensors weights (the same tensors, half the download when both are there). A name that is
    not a plain relative path refuses the pull: the hub (or mirror) is not to be trusted."""
    for name in files:
        if not safe_name(name):
            raise PullError(f"The hub lists a file named {name!r}: not a plain relative path; refusing it")
    found = sorted(f for f in files if any(_glob(f, p) for p in patterns))
    if any(f.endswith(".safetensors") for f in found):
        found = [f for f in found if not _glob(f, "pytorch_model*.bin")]
    return found


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    default = {"http": 80, "https": 443}.get(parsed.scheme)
    return parsed.scheme, parsed.host, parsed.port or default


def headers_for(url: str, hub: str, headers: dict[str, str]) -> dict[str, str]:
    """``headers`` without the credentials unless ``url`` is on the hub's own origin (a large file's
    location is its CDN, another host: the token is not for it)."""
    if _origin(url) == _origin(hub):
        return headers
    return {k: v for k, v in headers.items() if k.lower() not in ("authorization", "cookie")}


def _compare(name: str, kind: str, found: dict[str, LockedFile], locked: dict[str, LockedFile]) -> None:
    """The bytes a re-pull fetched must be the ones the first pull recorded."""
    for file, want in sorted(locked.items()):
        got = found.get(file)
        if got is None:
            raise PullError(f"The hub no longer has {kind} file {file} that the lock records")
        if got != want:
            raise PullError(
                f"{kind.capitalize()} file {file} differs from the lock file (sha256 {got.sha256}, "
                f"expected {want.sha256}); refusing it. If the change is expected: vodscribe models pull "
                f"--update {name}"
            )


def pull(
    model: CatalogueModel,
    store: ModelStore,
    *,
    endpoint: str | None = None,
    update: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = log.info,
) -> LockEntry:
    """Fetch (and convert) ``model`` into ``store``; returns its lock entry.

    A name already in the lock is pinned to the recorded commit and must give the recorded bytes,
    unless ``update`` (then the newest commit of the catalogue's revision is taken and recorded).
    """
    if hub_offline():
        raise PullError(
            "HF_HUB_OFFLINE is set, so nothing can be pulled here. Pull on a machine that reaches the "
            f"hub and copy its {store.root} folder (the lock file comes with it)."
        )
    with store.pulling(model.name):
        return _pull(model, store, endpoint=endpoint, update=update, progress=progress, say=say)


def _pull(
    model: CatalogueModel,
    store: ModelStore,
    *,
    endpoint: str | None,
    update: bool,
    progress: bool,
    say: Callable[[str], None],
) -> LockEntry:
    from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils._headers import build_hf_headers

    previous = store.entry(model.name)
    if previous is not None and not update and not store.problems(model.name):
        say(f"{model.name} is already pulled (commit {previous.revision[:12]}) and intact")
        return previous
    pinned = previous is not None and not update
    revision = previous.revision if previous is not None and pinned else (model.revision or "main")
    api = HfApi(endpoint=endpoint)
    try:
        info = api.model_info(model.repo, revision=revision)
    except Exception as exc:  # the client's HTTP errors: not found, unauthorised, unreachable
        raise PullError(f"Cannot reach {model.repo}@{revision} on the hub: {exc}") from exc
    commit = info.sha or revision
    files = _matching([s.rfilename for s in info.siblings or ()], model.files)
    if not files:
        raise PullError(f"{model.repo}@{commit[:12]} has none of the files {', '.join(model.files)}")
    say(f"pulling {model.name} from {model.repo}@{commit[:12]}: {', '.join(files)}")

    staging = store.root / PARTIAL / model.name
    if (staging / ".commit").is_file() and (staging / ".commit").read_text() != commit:
        shutil.rmtree(staging)  # parts of another commit resume nothing
    staging.mkdir(parents=True, exist_ok=True)
    (staging / ".commit").write_text(commit)
    headers = build_hf_headers(library_name="vodscribe")
    from huggingface_hub import constants

    hub = endpoint or constants.ENDPOINT
    metas = {}
    for name in files:
        url = hf_hub_url(model.repo, name, revision=commit, endpoint=endpoint)
        try:
            metas[name] = get_hf_file_metadata(url, endpoint=endpoint)
        except Exception as exc:  # the client's HTTP errors
            raise PullError(f"Cannot read {name} of {model.repo}@{commit[:12]} on the hub: {exc}") from exc
    _check_room(model, staging, {name: meta.size for name, meta in metas.items()})
    for name, meta in metas.items():
        try:
            sent = headers_for(meta.location, hub, headers)
            fetch_file(meta.location, staging / name, size=meta.size, headers=sent, progress=progress)
        except Exception as exc:  # a cut connection, an HTTP error, a full disk
            raise PullError(
                f"Pulling {model.name} stopped at {name}: {exc}. Run the same command again to resume "
                "(what was fetched is kept)."
            ) from exc
    etags = {name: meta.etag for name, meta in metas.items()}
    fetched = hash_files(staging, files)
    for name, etag in etags.items():
        if not matches_etag(staging / name, etag, fetched[name].sha256):
            (staging / name).unlink()
            raise PullError(
                f"{name} of {model.repo}@{commit[:12]} arrived damaged (it does not match the hub's "
                f"hash {etag}); run the same command again to fetch it anew."
            )
    if pinned and previous is not None:
        try:
            kind = "source" if model.convert else "model"
            _compare(model.name, kind, fetched, previous.source or previous.files)
        except PullError:
            for name, want in (previous.source or previous.files).items():
                if fetched.get(name) != want:
                    (staging / name).unlink(missing_ok=True)  # fetched again by the next try
            raise

    if model.convert:
        from vodscribe.models.convert import convert_checkpoint

        output = store.root / PARTIAL / f"{model.name}.ct2"
        say(f"converting {model.name} to CTranslate2 (float16)")
        converter = convert_checkpoint(staging, output)
        final_files, source, ready = hash_files(output), fetched, output
    else:
        converter, final_files, source, ready = None, fetched, {}, staging

    entry = LockEntry(
        name=model.name,
        kind=model.kind,
        repo=model.repo,
        revision=commit,
        files=final_files,
        source=source,
        converter=converter,
        pulled_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    _install(ready, store.folder(model.name), files=list(final_files))
    store.record(entry)
    if ready is not staging:
        shutil.rmtree(staging, ignore_errors=True)
    _tidy(store.root / PARTIAL)
    say(f"{model.name}: {len(final_files)} files, {entry.size / 1e9:.2f} GB in {store.folder(model.name)}")
    return entry


def _check_room(model: CatalogueModel, staging: Path, sizes: dict[str, int | None]) -> None:
    """Refuse before fetching what the disk cannot hold: the files still to fetch, and for a
    checkpoint its float16 conversion too (at most the checkpoint's size again)."""
    have = 0
    for name in sizes:
        for path in (staging / name, staging / f"{name}.part"):
            if path.is_file():
                have += path.stat().st_size
    total = sum(size or 0 for size in sizes.values())
    needed = total - have + (total if model.convert else 0)
    free = shutil.disk_usage(staging).free
    if needed > free:
        raise PullError(
            f"{model.name} needs {needed / 1e9:.1f} GB more on {staging.parent.parent}, which has "
            f"{free / 1e9:.1f} GB free"
        )


def matches_etag(path: Path, etag: str | None, sha256: str) -> bool:
    """Whether ``path`` (whose SHA-256 is ``sha256``) is what the hub says it serves: its ETag is
    the SHA-256 of a large (LFS or Xet) file and the git blob SHA-1 of a small one; another form
    cannot be checked here."""
    etag = (etag or "").removeprefix("W/").strip('"').lower()
    if re.fullmatch(r"[0-9a-f]{64}", etag):
        return sha256 == etag
    if re.fullmatch(r"[0-9a-f]{40}", etag):
        blob = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
        with path.open("rb") as f:
            while chunk := f.read(8 * 1024 * 1024):
                blob.update(chunk)
        return blob.hexdigest() == etag
    return True


def fetch_file(
    url: str, target: Path, *, size: int | None, headers: dict[str, str], progress: bool, tries: int = 6
) -> None:
    """Download ``url`` to ``target`` through ``target.part``, resuming with a ``Range`` request
    from the bytes already there: after a cut connection in this run and in a later run.
    huggingface_hub 2.x itself no longer resumes across runs (it writes each attempt to a new
    per-process temporary file), hence this loop. It ends: ``tries`` requests in a row that bring
    the file no further (cut early, or a server that ignores ``Range`` and starts over) fail the
    pull with the reason, and so does a server sending more than the ``size`` it announced."""
    if target.is_file() and (size is None or target.stat().st_size == size):
        return
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tqdm(
        total=size, initial=0, unit="B", unit_scale=True, unit_divisor=1024, desc=target.name,
        disable=not progress, file=sys.stderr, leave=False,
    ) as bar:  # fmt: skip
        failures, best, reason = 0, -1, ""
        while True:
            have = part.stat().st_size if part.exists() else 0
            if size is not None and have > size:  # left by an earlier run of a server that overshot
                part.unlink()
                have = 0
            bar.n = have
            bar.refresh()
            if size is not None and have == size:
                break
            if have > best:
                best, failures = have, 0
            elif failures + 1 >= tries:
                raise PullError(f"no progress in {tries} requests in a row ({reason})")
            else:
                failures += 1
                log.warning("%s: %s; resuming (%d/%d)", target.name, reason, failures, tries - 1)
                time.sleep(min(2.0**failures / 4, 8.0))
            try:
                reason = _fetch_once(url, part, have, size, headers, bar)
            except httpx.TransportError as exc:
                reason = str(exc) or type(exc).__name__
            if size is None and not reason:
                break
    os.replace(part, target)


def _fetch_once(
    url: str, part: Path, have: int, size: int | None, headers: dict[str, str], bar: tqdm[None]
) -> str:
    """One GET from byte ``have`` into ``part``: "" when the answer ended normally, else why it did
    not bring the whole file (a transport error is raised)."""
    request = dict(headers, **({"Range": f"bytes={have}-"} if have else {}))
    timeout = httpx.Timeout(30.0, read=120.0)
    with httpx.stream("GET", url, headers=request, follow_redirects=True, timeout=timeout) as response:
        if response.status_code == 416 and size is None:
            return ""  # the server has no more bytes than we do
        response.raise_for_status()
        restarted = bool(have) and response.status_code != 206
        if restarted:
            have = 0  # the server ignored the Range: start over
        ignored = "the server ignored Range and " if restarted else ""
        with part.open("ab" if have else "wb") as out:
            try:
                for chunk in response.iter_bytes():  # as received: a cut keeps every byte
                    if size is not None and have + len(chunk) > size:
                        raise PullError(f"the server sent more than the {size} bytes it announced")
                    out.write(chunk)
                    have += len(chunk)
                    bar.update(len(chunk))
            except httpx.TransportError as exc:
                return f"{ignored}the connection was cut: {exc or type(exc).__name__}"
    if size is not None and have < size:
        return f"{ignored}the answer ended early"
    return ""


def _install(ready: Path, target: Path, *, files: list[str]) -> None:
    """Move the model's files from ``ready`` to ``target``, replacing an older copy whole."""
    fresh = target.with_name(f".{target.name}.new")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    for rel in files:
        dest = fresh / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(ready / rel, dest)
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(fresh, target)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(ready, ignore_errors=True)


def _tidy(partial: Path) -> None:
    with suppress(OSError):
        partial.rmdir()  # only when no other pull is under way or half done
