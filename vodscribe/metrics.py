"""What vodscribe counts for Prometheus as it works: jobs, their waits and run times, failures by
reason, retries, reaped jobs, real-time factor, webhook deliveries, uploads, media seconds per
client, model load times.

These are events, counted in the process where they happen. ``vodscribe serve`` and ``vodscribe
worker`` point every process of theirs (the API, the Celery worker and its pool children) at one
folder (``PROMETHEUS_MULTIPROC_DIR``, set before this module is first imported), and their
``/metrics`` sums the folder: so one scrape of a machine's service gives that machine's totals, and
Prometheus sums the machines (``sum by (...)``). What is state rather than an event (queue depth,
jobs by state, per-client totals) is read from the database and the broker at scrape time by the API
(:mod:`vodscribe.api.metrics`): every API replica then answers the same numbers, and dashboards take
``max`` of them.

This module sits at the bottom of the house (it imports nothing of vodscribe), so any room counts
without importing upwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

#: Job kinds, as labels: an AI task, a hosted video's media job, a webhook delivery.
AI_TASK, VIDEO, WEBHOOK = "ai_task", "video", "webhook"

_WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)
_RUN_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 2 * 3600, 4 * 3600)
_RTF_BUCKETS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5)
_LOAD_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)

JOB_WAIT = Histogram(
    "vodscribe_job_wait_seconds",
    "From a job's submission to a worker starting its first attempt",
    ["kind"],
    buckets=_WAIT_BUCKETS,
)
JOB_RUN = Histogram(
    "vodscribe_job_run_seconds",
    "One attempt of a job, from its claim to its end, by how it ended",
    ["kind", "outcome"],
    buckets=_RUN_BUCKETS,
)
JOBS = Counter(
    "vodscribe_jobs",
    "Attempts of jobs that ended, by how they ended (a webhook delivery: delivered, retry, failed, "
    "deferred, skipped)",
    ["kind", "outcome"],
)
FAILURES = Counter(
    "vodscribe_job_failures",
    "Jobs that failed for good, by reason class (media: the user's file or URL; translation: a "
    "language pair this server cannot translate; model: a model file changed on disk; lost: the "
    "worker died too often; internal: a bug or an outage, after the last attempt)",
    ["kind", "reason"],
)
RETRIES = Counter(
    "vodscribe_job_retries", "Attempts sent back to the queue after an internal error", ["kind"]
)
REAPED = Counter(
    "vodscribe_jobs_reaped",
    "Jobs taken back from a dead worker (resent or failed by the reaper, or taken over by the worker "
    "the broker handed its message to next), or whose queue message was lost and was sent again",
    ["kind", "action"],
)
REALTIME_FACTOR = Histogram(
    "vodscribe_asr_realtime_factor",
    "Seconds of recognition (and translation) per second of media, per AI task that recognised "
    "its speech (not one that reused a kept recognition)",
    ["model", "device"],
    buckets=_RTF_BUCKETS,
)
MEDIA_SECONDS = Counter(
    "vodscribe_media_seconds",
    "Seconds of media processed successfully, per client and job kind (usage)",
    ["client_id", "kind"],
)
UPLOADS = Counter(
    "vodscribe_uploads", "Direct (TUS) uploads by event (created, finished, terminated)", ["event"]
)
UPLOAD_BYTES = Counter("vodscribe_upload_bytes", "Bytes received by the TUS server")
MODEL_LOAD = Histogram(
    "vodscribe_model_load_seconds",
    "Loading a model into memory (ASR, LLM), per model and device",
    ["model", "device"],
    buckets=_LOAD_BUCKETS,
)


def multiprocess_folder() -> Path | None:
    """The folder this machine's processes share their counts in, if set."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(folder) if folder else None


def registry(*extra: Collector) -> CollectorRegistry:
    """What a ``/metrics`` of this process serves: the shared folder's sums (or this process's own
    counts when there is none), the GPUs' memory, and ``extra`` collectors."""
    folder = multiprocess_folder()
    if folder is None:
        collectors: list[Collector] = [REGISTRY]
    else:
        shared = CollectorRegistry()
        multiprocess.MultiProcessCollector(shared, path=str(folder))  # type: ignore[no-untyped-call]
        collectors = [shared]
    out = CollectorRegistry()
    for collector in [*collectors, GpuMemory(), *extra]:
        out.register(collector)
    return out


class GpuMemory(Collector):
    """Memory of each NVIDIA GPU, read through NVML at scrape time (nothing where NVML or a GPU is
    missing: install ``nvidia-ml-py`` on GPU machines)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:  # no library, no driver, no GPU
            return
        try:
            used = GaugeMetricFamily("vodscribe_gpu_memory_used_bytes", "GPU memory in use", labels=["gpu"])
            total = GaugeMetricFamily("vodscribe_gpu_memory_total_bytes", "GPU memory", labels=["gpu"])
            for index in range(pynvml.nvmlDeviceGetCount()):
                info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(index))
                used.add_metric([str(index)], float(info.used))
                total.add_metric([str(index)], float(info.total))
            yield used
            yield total
        finally:
            pynvml.nvmlShutdown()
