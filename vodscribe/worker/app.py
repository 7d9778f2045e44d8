"""Entry point for ``celery -A vodscribe.worker.app worker``."""

from vodscribe.worker.supervisor import die_with_parent

die_with_parent()  # the embedded worker of `vodscribe serve` stops when the server does

from celery.signals import setup_logging  # noqa: E402

from vodscribe.config import get_settings  # noqa: E402
from vodscribe.logs import setup  # noqa: E402
from vodscribe.queue import get_celery  # noqa: E402
from vodscribe.worker import tasks  # noqa: E402, F401  (registers the tasks)

app = get_celery()


@setup_logging.connect  # type: ignore[untyped-decorator]  # Celery's signals are untyped
def _logs(loglevel: int | str | None = None, **_: object) -> None:
    """The service's log format (VODSCRIBE_LOG_FORMAT) in the worker too, instead of Celery's."""
    setup(loglevel or "INFO", get_settings().log_format)
