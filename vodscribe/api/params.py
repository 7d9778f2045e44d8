"""Path and query parameters with the bounds the database can hold.

Ids and ``client_user_id`` are 32-bit integer columns (PostgreSQL's ``integer``); a larger number
cannot name anything, and passing it on would overflow in the driver (a 500), so it is refused as
bad input (400 in the route's Gcore shape). Pages are bounded so that ``offset`` stays a 64-bit
number.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from vodscribe.schemas.text import INT32_MAX, INT32_MIN

MAX_PAGE = 1_000_000

VideoId = Annotated[int, Path(ge=INT32_MIN, le=INT32_MAX)]
SubtitleId = Annotated[int, Path(ge=INT32_MIN, le=INT32_MAX)]
Page = Annotated[int, Query(ge=1, le=MAX_PAGE)]
ClientUserId = Annotated[int | None, Query(ge=INT32_MIN, le=INT32_MAX)]
#: Free-text query parameters (search, filters): longer ones cannot match anything stored.
QueryText = Annotated[str | None, Query(max_length=1024)]
