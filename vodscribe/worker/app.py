"""Entry point for ``celery -A vodscribe.worker.app worker``."""

from vodscribe.queue import get_celery
from vodscribe.worker import tasks  # noqa: F401  (registers the tasks)

app = get_celery()
