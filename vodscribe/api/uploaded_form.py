"""A ``multipart/form-data`` body read as it streams in: its one file part written straight to disk,
its other fields kept (small), and the size limit enforced while it arrives (413 at the first byte
over it, before anything is stored), so no upload costs memory or disk beyond the limit.

Starlette's own form parser spools files into the system's temporary folder without a size bound,
so the speech requests (``/v1/audio/...``, ``/asr``) read their bodies here instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

#: The most bytes all the other fields of a form may take together.
MAX_FIELDS_BYTES = 256 * 1024


class FormError(Exception):
    """A body that is not the form expected; ``status`` is 400, 413 or 415."""

    def __init__(self, message: str, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.param = message, status, param


@dataclass
class UploadedForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    file: Path | None = None
    filename: str | None = None
    size: int = 0

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None


@dataclass
class _Part:
    headers: list[tuple[str, str]] = field(default_factory=list)
    name: str | None = None
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)
    sink: IO[bytes] | None = None


def _disposition(value: str) -> tuple[str | None, str | None]:
    message = Message()
    message["content-disposition"] = value
    name = message.get_param("name", header="content-disposition")
    filename = message.get_param("filename", header="content-disposition")
    return (str(name) if name is not None else None, str(filename) if filename is not None else None)


async def read_form(request: Request, file_field: str, target: Path, max_bytes: int) -> UploadedForm:
    """Read the request's form: the part named ``file_field`` into ``target``, at most ``max_bytes``
    of it, the other fields into memory. ``target`` is removed again on any error."""
    kind, params = parse_options_header(request.headers.get("content-type"))
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise FormError("The request must be multipart/form-data with the file as a part.", 415)
    form = UploadedForm()
    current = _Part()
    header_field, header_value = bytearray(), bytearray()
    fields_bytes = 0
    failure: FormError | None = None

    def on_part_begin() -> None:
        nonlocal current
        current = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        current.headers.append(
            (header_field.decode("latin-1").lower(), header_value.decode("utf-8", "replace"))
        )
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        nonlocal failure
        for name, value in current.headers:
            if name == "content-disposition":
                current.name, current.filename = _disposition(value)
        if current.name == file_field:
            if form.file is not None:
                failure = FormError(f"Only one {file_field!r} may be sent.", param=file_field)
                return
            current.sink = target.open("wb")
            form.file, form.filename = target, current.filename or file_field

    def on_part_data(data: bytes, start: int, end: int) -> None:
        nonlocal fields_bytes, failure
        if failure is not None:
            return
        if current.sink is not None:
            form.size += end - start
            if form.size > max_bytes:
                failure = FormError(f"The file is larger than this server accepts ({max_bytes} bytes).", 413)
                return
            current.sink.write(data[start:end])
            return
        fields_bytes += end - start
        if fields_bytes > MAX_FIELDS_BYTES:
            failure = FormError("The form's fields are too large.", 413)
            return
        current.data.extend(data[start:end])

    def on_part_end() -> None:
        if current.sink is not None:
            current.sink.close()
            current.sink = None
        elif current.name is not None:
            form.fields.setdefault(current.name, []).append(current.data.decode("utf-8", "replace"))

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in _body(request):
            parser.write(chunk)
            if failure is not None:
                raise failure
        parser.finalize()
        if failure is not None:
            raise failure
    except FormError:
        _discard(current, target)
        raise
    except ClientDisconnect:
        _discard(current, target)
        raise
    except Exception as exc:  # the parser's own errors: a malformed body
        _discard(current, target)
        raise FormError(f"The multipart body could not be read: {exc}") from exc
    if form.file is None:
        raise FormError(f"The form has no {file_field!r} file.", param=file_field)
    return form


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


def _discard(part: _Part, target: Path) -> None:
    if part.sink is not None:
        with contextlib.suppress(OSError):
            part.sink.close()
    target.unlink(missing_ok=True)
