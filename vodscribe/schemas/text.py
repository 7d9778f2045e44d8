"""Bounded, strict text (and 32-bit integers) for request bodies.

Every free-text field has a maximum length (Gcore's where documented: ``client_user_id`` 256 and
``client_entity_data`` 4096 characters on AI tasks), so no body can make rows, list pages or the
server's memory grow without bound; and none may hold a NUL character (PostgreSQL text cannot store
it) or a lone surrogate (JSON's ``"\ud800"``: no database can encode it). Strings are strict: a
number where text belongs is refused, not converted.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

#: Ids and ``client_user_id`` are 32-bit integer columns (PostgreSQL's ``integer``).
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (a lone surrogate is not)") from None
    return value


_NO_NUL = AfterValidator(_no_nul)

VideoName = Annotated[str, StringConstraints(strict=True, max_length=1024), _NO_NUL]
Description = Annotated[str, StringConstraints(strict=True, max_length=4096), _NO_NUL]
#: A URL (the URL guard then allows at most 2048 characters).
URL = Annotated[str, StringConstraints(strict=True, max_length=4096), _NO_NUL]
#: A language code or name ("auto", "ger", "German").
LanguageCode = Annotated[str, StringConstraints(strict=True, max_length=64), _NO_NUL]
#: A comma-separated list of language codes.
LanguageList = Annotated[str, StringConstraints(strict=True, max_length=512), _NO_NUL]
SubtitleName = Annotated[str, StringConstraints(strict=True, max_length=512), _NO_NUL]
#: WebVTT or SRT text (the service also bounds its UTF-8 size to 5 MB).
SubtitleText = Annotated[str, StringConstraints(strict=True, max_length=5 * 1024 * 1024), _NO_NUL]
#: ``origin_http_headers``: ``Name: value`` lines (checked line by line by the service).
HeaderLines = Annotated[str, StringConstraints(strict=True, max_length=8192), _NO_NUL]
ClientUserIdText = Annotated[str, StringConstraints(strict=True, max_length=256), _NO_NUL]
EntityData = Annotated[str, StringConstraints(strict=True, max_length=4096), _NO_NUL]
TaskName = Annotated[str, StringConstraints(strict=True, max_length=64), _NO_NUL]
#: A vocabulary term, or its rendering in a language.
TermText = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=100, strip_whitespace=True), _NO_NUL
]
VocabularyName = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=200), _NO_NUL]
