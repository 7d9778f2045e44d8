"""Errors raised by the media stages (fetch, probe, decode, translate).

A :class:`MediaError` is the user's problem, not ours: its ``message`` is written for the person who
submitted the URL and ends up verbatim in the task result (``{"error": message}``). Anything else
that escapes a stage (disk full, a bug) is an internal error and must not be shown as-is.

:class:`Cancelled` is not an error at all: it unwinds a stage whose task was cancelled.
"""

from __future__ import annotations


class MediaError(Exception):
    """A problem with the user's URL or file, with a message meant for end users."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class URLNotAllowedError(MediaError):
    """Bad scheme, credentials in the URL, or a private/loopback/link-local/metadata address."""


class FetchError(MediaError):
    """Network failure, HTTP 4xx/5xx, timeout or too many redirects."""


class TooLargeError(MediaError):
    """The file is larger than the configured limit."""


class NotMediaError(MediaError):
    """The content is not an audio/video file (an HTML page, a playlist, an archive...)."""


class CorruptMediaError(MediaError):
    """The file looks like media but cannot be demuxed or decoded."""


class TooLongError(MediaError):
    """The media lasts longer than the configured limit (by its header, or found while decoding)."""


def too_long(limit_s: float, duration_s: float | None = None) -> TooLongError:
    """The error for media past ``limit_s`` seconds (``duration_s``: what its header says)."""
    found = f" (it lasts {_clock(duration_s)})" if duration_s is not None else ""
    return TooLongError(f"The media is longer than the limit of {_clock(limit_s)}{found}.")


def _clock(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes} min {int(seconds % 60):02d} s" if minutes else f"{seconds:g} s"


class NoAudioError(MediaError):
    """The file has no audio track, so there is nothing to transcribe."""

    def __init__(self, message: str = "The file has no audio track.") -> None:
        super().__init__(message)


class UnsupportedTranslation(MediaError):
    """No configured translation backend can produce the requested subtitle language."""


class Cancelled(Exception):
    """The task was cancelled while a stage was running; raised by ``should_stop`` polling."""


class DownloadCancelled(Cancelled):
    """The download was cancelled; the partial file has been removed."""
