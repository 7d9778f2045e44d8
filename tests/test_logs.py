"""The log formats (VODSCRIBE_LOG_FORMAT): the work's ids on each line, as text or as JSON fields."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from vodscribe.logs import REQUEST_ID, setup, working_on


@pytest.fixture(autouse=True)
def _root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers, root.level = handlers, level


def test_json_lines_carry_the_ids_of_the_work_under_way(capsys: pytest.CaptureFixture[str]) -> None:
    setup("INFO", "json")
    log = logging.getLogger("vodscribe.test")
    token = REQUEST_ID.set("req-1")
    try:
        with working_on(task_id="t-1"):
            with working_on(video_id=7):
                log.info("inside both")
            log.warning("task only")
    finally:
        REQUEST_ID.reset(token)
    log.info("outside")
    log.debug("below the level")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["message"], line["task_id"], line["video_id"], line["request_id"]) for line in lines] == [
        ("inside both", "t-1", 7, "req-1"),
        ("task only", "t-1", None, "req-1"),
        ("outside", None, None, None),
    ]
    assert [line["level"] for line in lines] == ["INFO", "WARNING", "INFO"]
    assert {line["logger"] for line in lines} == {"vodscribe.test"}
    assert all(line["timestamp"].endswith("+0000") for line in lines)


def test_text_lines_name_the_work_after_the_logger(capsys: pytest.CaptureFixture[str]) -> None:
    setup("INFO", "text")
    log = logging.getLogger("vodscribe.test")
    with working_on(task_id="t-2", video_id=3):
        log.info("a line: with a colon")
    log.info("plain")
    first, second = capsys.readouterr().err.splitlines()
    assert first.endswith(" INFO vodscribe.test [task=t-2 video=3]: a line: with a colon")
    assert second.endswith(" INFO vodscribe.test: plain")
