"""Download a user-supplied media URL safely (docs/design.md, "Safety of user URLs").

* :func:`check_url` is the cheap check done when the API accepts a URL: http(s) only, no
  credentials, bounded length, and (unless ``allow_private``) a host that is not and does not resolve
  to a loopback, private, link-local, metadata or otherwise reserved address.
* :func:`download` fetches with ssrfguard's httpx client, which resolves once, validates every
  address, connects only to the validated one and re-checks each redirect hop, so a DNS record that
  changes after :func:`check_url` gains nothing. Size, total time, connect time and redirects are
  bounded, and the signature of the first bytes is checked before the rest is downloaded: an HTML
  page (a YouTube link) or a playlist is refused at once.

``allow_private`` (``Settings.allow_private_urls``) switches the address checks off and uses a
plain httpx client; it exists for tests that serve media from 127.0.0.1 and is off by default.

* :func:`parse_headers` checks a video's ``origin_http_headers`` (Gcore: ``"Authorization: Bearer
  ABC"``); :func:`download` sends them only to the origin (scheme, host and port) of the URL it was
  given, on every hop that goes there, as curl does with credentials: a redirect to another origin
  does not get them.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http import HTTPStatus
from ipaddress import ip_address
from pathlib import Path
from typing import BinaryIO
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx
from ssrfguard import (
    BlockedAddressError,
    BlockedURLError,
    Resolver,
    SSRFGuardError,
    TooManyRedirectsError,
    resolve,
)
from ssrfguard.httpx import Client as GuardedClient

from vodscribe.atomic import replacing
from vodscribe.config import Settings
from vodscribe.errors import (
    DownloadCancelled,
    FetchError,
    MediaError,
    TooLargeError,
    URLNotAllowedError,
)
from vodscribe.media.probe import SNIFF_BYTES, MediaKind, sniff_or_raise
from vodscribe.media.public_address import PublicOnlyPolicy
from vodscribe.media.stop_check import StopCheck

__all__ = ["USER_AGENT", "DownloadCancelled", "FetchResult", "check_url", "download", "parse_headers"]

USER_AGENT = "vodscribe/0.1"
MAX_URL_LENGTH = 2048
#: Ports a user URL may name unless configured otherwise (``Settings.fetch_allowed_ports``).
DEFAULT_PORTS: frozenset[int] = frozenset({80, 443, 8080, 8443})

#: Longest wait for the next bytes (also capped by the total time limit): a stalled server fails
#: after this, and cancellation, polled between chunks, is never delayed longer than this.
_STALL_TIMEOUT_S = 30.0
_PROGRESS_INTERVAL_S = 0.25
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# Hosts made of numbers only (2130706433, 0x7f000001, 0177.0.0.1, 127.1) that are not a plain
# dotted-quad: legacy encodings of IP addresses, used to sneak past naive filters.
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]*))*\.?", re.IGNORECASE)

#: ``origin_http_headers``: at most this many lines, this many characters in all.
MAX_HEADERS = 10
MAX_HEADERS_LENGTH = 8192
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")  # visible ASCII, space and tab: no CR, LF or NUL
#: Headers that describe the connection or the message rather than ask for the file, or that the
#: download itself relies on (an identity encoding, the whole file): refused, never sent.
#: Header values at least this long are blanked out of error messages (a shorter one, "1", is no
#: credential, and replacing it would garble the message: "HTTP 40[redacted]").
_REDACT_FROM = 4
_RESERVED_HEADERS = frozenset(
    {
        "accept-encoding", "connection", "content-length", "content-encoding", "content-type", "expect",
        "host", "http2-settings", "if-range", "keep-alive", "proxy-authenticate", "proxy-authorization",
        "proxy-connection", "range", "te", "trailer", "transfer-encoding", "upgrade",
    }
)  # fmt: skip

_PRIVATE_MESSAGE = (
    "The URL points to a private, loopback, link-local or cloud-metadata address ({host}); "
    "only public internet addresses are allowed."
)


@dataclass(frozen=True)
class FetchResult:
    """A completed download."""

    path: Path
    size: int
    content_type: str | None
    final_url: str  # after redirects
    kind: MediaKind  # sniffed from the first bytes


# --- URL checks ---------------------------------------------------------------------------------


def check_url(
    url: str,
    *,
    allow_private: bool,
    resolver: Resolver | None = None,
    ports: Collection[int] = DEFAULT_PORTS,
) -> str:
    """Validate a user URL and return it normalised; raise :class:`URLNotAllowedError` if refused.

    Unless ``allow_private``, the host is resolved (``resolver`` replaces ``socket.getaddrinfo``,
    for tests) and every address must be public. :func:`download` re-checks at connection time.
    """
    normalised, parts = _normalise(url)
    if not allow_private:
        _check_public(normalised, parts.hostname or "", resolver, ports=ports)
    return normalised


def _normalise(url: str) -> tuple[str, SplitResult]:
    """Syntax checks shared by both modes; lowercases scheme and host, drops the fragment."""
    text = url.strip().replace(" ", "%20")
    if not text:
        raise URLNotAllowedError("The URL is empty.")
    if len(text) > MAX_URL_LENGTH:
        raise URLNotAllowedError(f"The URL is too long (more than {MAX_URL_LENGTH} characters).")
    if _CONTROL_CHARACTERS.search(text):
        raise URLNotAllowedError("The URL contains control characters.")
    try:
        parts = urlsplit(text)
        _ = parts.port
    except ValueError as exc:
        raise URLNotAllowedError("The URL is not valid.") from exc
    scheme = parts.scheme.lower()
    if not scheme:
        raise URLNotAllowedError("The URL must start with http:// or https://.")
    if scheme not in ("http", "https"):
        raise URLNotAllowedError(f"Only http:// and https:// URLs are supported, not {scheme}:.")
    if parts.username is not None or parts.password is not None:
        raise URLNotAllowedError("URLs with a user name or password in them are not allowed.")
    host = parts.hostname
    if not host:
        raise URLNotAllowedError("The URL has no host name.")
    if _NUMERIC_HOST.fullmatch(host) and not _is_ip(host):
        raise URLNotAllowedError(f"The host '{host}' is an encoded IP address; write it as a plain address.")
    parts = parts._replace(scheme=scheme, netloc=parts.netloc.lower(), fragment="")
    return urlunsplit(parts), parts


def _is_ip(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


def _check_public(
    url: str,
    host: str,
    resolver: Resolver | None,
    *,
    resolve_names: bool = True,
    ports: Collection[int] = DEFAULT_PORTS,
) -> None:
    """Refuse non-public addresses; names are resolved only when ``resolve_names``."""
    policy = PublicOnlyPolicy(allowed_ports=frozenset(ports))
    try:
        if _is_ip(host):  # checked before the port, so 127.0.0.1:8080 is refused for the right reason
            policy.check_address(host)
        target = policy.check_url(url)
        if resolve_names and not target.is_literal_address:
            resolve(target, policy=policy, resolver=resolver)
    except SSRFGuardError as exc:
        raise _refusal(exc, host) from exc
    except (OSError, UnicodeError) as exc:  # socket.gaierror: the name does not resolve
        raise URLNotAllowedError(f"The host '{host}' could not be found.") from exc


def _refusal(exc: SSRFGuardError, host: str) -> URLNotAllowedError | FetchError:
    """Translate an ssrfguard refusal into a message for the user."""
    if isinstance(exc, TooManyRedirectsError):
        return FetchError(f"The URL redirected too many times (more than {exc.limit}).")
    if isinstance(exc, BlockedAddressError) or isinstance(exc.__cause__, BlockedAddressError):
        return URLNotAllowedError(_PRIVATE_MESSAGE.format(host=host))
    reason = exc.reason if isinstance(exc, BlockedURLError) else ""
    if "allowed_ports" in reason:
        return URLNotAllowedError(f"That port is not allowed ({reason.split('(')[-1].rstrip(')')} are).")
    if "allowed_schemes" in reason:
        return URLNotAllowedError("The URL redirects to an address that is not http:// or https://.")
    if "allow_userinfo" in reason:
        return URLNotAllowedError("URLs with a user name or password in them are not allowed.")
    return URLNotAllowedError(f"The URL (or one it redirects to) is not allowed (host '{host}').")


def parse_headers(text: str) -> dict[str, str]:
    """The ``Name: value`` lines of ``origin_http_headers`` (one, as Gcore documents, or several
    separated by newlines); raises ValueError with a message for the user. Strict, because the text
    becomes request headers: token names, printable ASCII values (no CR/LF to inject more), no
    repeated names, none of :data:`_RESERVED_HEADERS`. Messages never quote a value (a credential)."""
    if len(text) > MAX_HEADERS_LENGTH:
        raise ValueError(f"is too long (maximum is {MAX_HEADERS_LENGTH} characters)")
    lines = text.strip("\r\n").split("\n")
    if len(lines) > MAX_HEADERS:
        raise ValueError(f"has too many lines (maximum is {MAX_HEADERS} headers)")
    headers: dict[str, str] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.removesuffix("\r")
        name, colon, value = line.partition(":")
        where = f"line {number}" if len(lines) > 1 else "the header"
        if not colon or not _HEADER_NAME.fullmatch(name):
            raise ValueError(f'{where} must be "Name: value" with a valid header name')
        value = value.strip(" \t")
        if not _HEADER_VALUE.fullmatch(value):
            raise ValueError(f"{where}: the value of {name} may hold only printable ASCII characters")
        if not value:
            raise ValueError(f"{where}: the value of {name} is empty")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"{where}: the {name} header cannot be set")
        if name.lower() in (known.lower() for known in headers):
            raise ValueError(f"{where}: the {name} header is given twice")
        headers[name] = value
    return headers


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _to_origin_only(url: str, headers: Mapping[str, str]) -> Callable[[httpx.Request], None]:
    """A request hook (httpx calls it for every hop, redirects included) that puts ``headers`` on
    requests to ``url``'s origin and takes them off any other. The client carries them on each hop
    itself; this decides, so what httpx strips by itself (only ``Authorization``) does not matter."""
    origin = _origin(httpx.URL(url))

    def hook(request: httpx.Request) -> None:
        same = _origin(request.url) == origin
        for name, value in headers.items():
            if same:
                request.headers[name] = value
            else:
                request.headers.pop(name, None)

    return hook


# --- download -------------------------------------------------------------------------------------


def download(
    url: str,
    dest: Path,
    *,
    settings: Settings,
    on_progress: Callable[[int, int | None], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    headers: Mapping[str, str] | None = None,
) -> FetchResult:
    """Download ``url`` to ``dest`` (written under a temporary name, renamed when complete).

    ``headers`` (from :func:`parse_headers`) go to ``url``'s origin only, never to another one a
    redirect leads to; error messages never contain their values.

    ``on_progress(done_bytes, total_bytes_or_None)`` is called at most every 0.25 s and once at the
    end with ``(size, size)``. ``should_stop()`` is polled between chunks (at most every 0.25 s);
    when it returns True, :class:`DownloadCancelled` is raised. On any failure the partial file is
    removed. Raises the :class:`~vodscribe.errors.MediaError` subclasses for user errors.
    """
    normalised, parts = _normalise(url)
    if not settings.allow_private_urls:
        # Without DNS: the guarded client resolves once, checks and pins the address it connects to.
        _check_public(
            normalised, parts.hostname or "", None, resolve_names=False, ports=settings.fetch_allowed_ports
        )
    stop = StopCheck(should_stop, DownloadCancelled)
    stop.check()
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Outermost, so a failed or cancelled download leaves nothing behind and a good one is renamed
    # into place once the connection is closed.
    with (
        replacing(dest) as part,
        _redacted([v for v in (headers or {}).values() if len(v) >= _REDACT_FROM]),
        _translated_errors(parts.hostname or ""),
        _client(settings, _to_origin_only(normalised, headers or {})) as client,
    ):
        result = _fetch(client, normalised, part, settings, on_progress, stop)
    return replace(result, path=dest)


def _client(settings: Settings, hook: Callable[[httpx.Request], None]) -> httpx.Client:
    # Read timeout = longest wait for the next bytes; the total time is enforced in _limited.
    timeout = httpx.Timeout(
        min(settings.fetch_timeout_s, _STALL_TIMEOUT_S), connect=settings.fetch_connect_timeout_s
    )
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    # trust_env=False: no proxy from the environment. A proxy resolves the host itself, so the
    # validated address could not be pinned (ssrfguard refuses proxies for that reason).
    if settings.allow_private_urls:
        return httpx.Client(
            timeout=timeout,
            follow_redirects=True,
            max_redirects=settings.fetch_max_redirects,
            headers=headers,
            trust_env=False,
            event_hooks={"request": [hook]},
        )
    return GuardedClient(
        policy=_policy(settings),
        timeout=timeout,
        follow_redirects=True,
        max_redirects=settings.fetch_max_redirects,
        headers=headers,
        trust_env=False,
        event_hooks={"request": [hook]},
    )


def _policy(settings: Settings) -> PublicOnlyPolicy:
    """ssrfguard's default policy, public unicast addresses only, with our ports and redirect cap."""
    return PublicOnlyPolicy(
        allowed_ports=frozenset(settings.fetch_allowed_ports), max_redirects=settings.fetch_max_redirects
    )


def _fetch(
    client: httpx.Client,
    url: str,
    part: Path,
    settings: Settings,
    on_progress: Callable[[int, int | None], None] | None,
    stop: StopCheck,
) -> FetchResult:
    deadline = time.monotonic() + settings.fetch_timeout_s
    with client.stream("GET", url) as response:
        _check_status(response)
        total = _content_length(response)
        if total is not None and total > settings.fetch_max_bytes:
            raise _too_large(settings.fetch_max_bytes)
        with part.open("wb") as out:
            chunks = _limited(response.iter_bytes(), settings, deadline, stop)
            size, kind = _write(chunks, out, total, on_progress)
        return FetchResult(
            path=part,
            size=size,
            content_type=response.headers.get("content-type"),
            final_url=str(response.url),
            kind=kind,
        )


def _limited(
    chunks: Iterator[bytes], settings: Settings, deadline: float, stop: StopCheck
) -> Iterator[bytes]:
    """Enforce the byte limit, the total time limit and cancellation between chunks."""
    size = 0
    for chunk in chunks:
        stop.check()
        if time.monotonic() > deadline:
            raise FetchError(f"The download took longer than the limit of {settings.fetch_timeout_s:g} s.")
        size += len(chunk)
        if size > settings.fetch_max_bytes:
            raise _too_large(settings.fetch_max_bytes)
        yield chunk


def _write(
    chunks: Iterator[bytes],
    out: BinaryIO,
    total: int | None,
    on_progress: Callable[[int, int | None], None] | None,
) -> tuple[int, MediaKind]:
    """Write the body, sniffing the signature as soon as enough bytes have arrived."""
    head = b""
    kind: MediaKind | None = None
    size = 0
    last_report = 0.0
    for chunk in chunks:
        if kind is None:
            head += chunk
            if len(head) >= SNIFF_BYTES:
                kind = sniff_or_raise(head[:SNIFF_BYTES])
        out.write(chunk)
        size += len(chunk)
        now = time.monotonic()
        if on_progress is not None and now - last_report >= _PROGRESS_INTERVAL_S:
            last_report = now
            on_progress(size, total)
    if kind is None:  # shorter than SNIFF_BYTES
        kind = sniff_or_raise(head)
    if on_progress is not None:
        on_progress(size, size)
    return size, kind


def _check_status(response: httpx.Response) -> None:
    if 200 <= response.status_code < 300:
        return
    try:
        phrase = HTTPStatus(response.status_code).phrase
    except ValueError:
        phrase = ""
    raise FetchError(f"The URL returned HTTP {response.status_code} {phrase}".rstrip() + ".")


def _content_length(response: httpx.Response) -> int | None:
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


def _too_large(limit: int) -> TooLargeError:
    return TooLargeError(f"The file is larger than the limit of {_human_size(limit)}.")


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


@contextmanager
def _translated_errors(host: str) -> Iterator[None]:
    """Turn httpx and ssrfguard exceptions into MediaErrors with end-user messages."""
    try:
        yield
    except SSRFGuardError as exc:
        raise _refusal(exc, _host_of(exc) or host) from exc
    except httpx.TooManyRedirects as exc:
        raise FetchError("The URL redirected too many times.") from exc
    except httpx.ConnectTimeout as exc:
        raise FetchError(f"Connecting to {host} timed out.") from exc
    except httpx.TimeoutException as exc:
        raise FetchError(f"The server {host} stopped sending data (timed out).") from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise URLNotAllowedError("The URL (or a redirect) uses an unsupported or invalid address.") from exc
    except httpx.ConnectError as exc:
        raise FetchError(f"Could not connect to {host}: {_reason(exc)}.") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"The download from {host} failed: {_reason(exc)}.") from exc


@contextmanager
def _redacted(secrets: list[str]) -> Iterator[None]:
    """Blank ``secrets`` out of the message of a MediaError raised inside (stored as the video's
    ``error``); the values were checked, so no library quotes them, but a message is no place to
    find out."""
    try:
        yield
    except MediaError as exc:
        message = exc.message
        for secret in secrets:
            message = message.replace(secret, "[redacted]")
        if message == exc.message:
            raise
        raise type(exc)(message) from None


def _host_of(exc: SSRFGuardError) -> str | None:
    """The host a redirect hop was refused for (it may differ from the original URL's host)."""
    if isinstance(exc, BlockedURLError):
        try:
            return urlsplit(exc.url).hostname
        except ValueError:
            return None
    return getattr(exc, "address", None)


def _reason(exc: Exception) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return "the host name could not be resolved"
        cause = cause.__cause__ or cause.__context__
    return (str(exc).strip() or type(exc).__name__)[:200]
