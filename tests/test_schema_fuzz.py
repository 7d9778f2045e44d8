"""A bounded property-based run of the API against its own OpenAPI schema (schemathesis).

Every operation gets generated requests, valid and invalid; no answer may be a 5xx, and every answer
must be one the schema documents (status, content type, body, headers). In-process over ASGI, with no
worker, so nothing is ever fetched; and name resolution is cut off, so a generated URL cannot make
even a DNS query leave the machine (its task is refused as a host that cannot be found).
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from vodscribe.api.app import create_app
from vodscribe.config import Settings
from vodscribe.db.session import migrate, session_scope
from vodscribe.services.clients import create_client

# The schema is loaded when the module is collected, so the app is made then, in a folder of its own.
_DATA = Path(tempfile.mkdtemp(prefix="vodscribe-fuzz-"))
_CONFIG = Settings(data_dir=_DATA, rate_limit_per_s=0)
migrate(_CONFIG.db_url)
with session_scope(_CONFIG.db_url) as _s:
    _, KEY = create_client(_s, "fuzz")
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_CONFIG))


def _no_dns(host: Any, *args: Any, **kwargs: Any) -> Any:
    raise socket.gaierror(socket.EAI_NONAME, f"name resolution is off in this test ({host!r})")


@pytest.fixture(autouse=True, scope="module")
def _isolated() -> Iterator[None]:
    real = socket.getaddrinfo
    socket.getaddrinfo = _no_dns  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.getaddrinfo = real  # type: ignore[assignment]
        shutil.rmtree(_DATA, ignore_errors=True)


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
    checks.allow_header_conformance,
]


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_answers_as_documented(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"APIKey {KEY}"}, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_without_a_key_nothing_is_served_but_public_media(case: Any) -> None:
    response = case.call_and_validate(checks=[checks.not_a_server_error, checks.status_code_conformance])
    if case.path.startswith("/streaming/"):
        assert response.status_code in (400, 401, 405), (case.path, response.status_code)
