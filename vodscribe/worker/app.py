"""Entry point for ``celery -A vodscribe.worker.app worker``."""

from vodscribe.worker.supervisor import die_with_parent

die_with_parent()  # the embedded worker of `vodscribe serve` stops when the server does

from vodscribe.queue import get_celery  # noqa: E402
from vodscribe.worker import tasks  # noqa: E402, F401  (registers the tasks)

app = get_celery()
