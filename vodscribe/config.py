"""Settings, read from the environment (prefix ``VODSCRIBE_``) or a ``.env`` file.

The defaults are the embedded mode: SQLite in the data directory, local files, a Celery worker on a
filesystem broker started by ``vodscribe serve`` itself. Point ``VODSCRIBE_DATABASE_URL`` at PostgreSQL
and ``VODSCRIBE_BROKER_URL`` at Redis to scale out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


@dataclass(frozen=True, slots=True)
class AsrOptions:
    """How Whisper runs: the ``VODSCRIBE_ASR_*`` settings but the model, as one object from the
    settings to the engine (hashable: the engine cache is keyed by it)."""

    device: str = "auto"
    compute_type: str = "auto"
    beam_size: int = 5
    batch_size: int = -1
    cpu_threads: int = 0


#: The defaults of the ``VODSCRIBE_ASR_*`` settings.
DEFAULT_ASR = AsrOptions()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VODSCRIBE_", env_file=".env", extra="ignore")

    # --- where things live -------------------------------------------------------------------
    data_dir: Path = Field(default=Path("data"), description="Root of the database, media and broker files")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir")
    broker_url: str | None = Field(default=None, description="Celery broker; default a filesystem broker")

    # --- HTTP API ------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(default=None, description="Base URL clients reach the API at")

    max_body_bytes: int = Field(default=8 * 1024 * 1024, description="Largest request body (413 beyond)")
    max_batch_body_bytes: int = Field(
        default=64 * 1024 * 1024, description="Largest body of POST /streaming/videos/batch (Gcore: 64 MB)"
    )
    rate_limit_per_s: float = Field(default=20.0, description="Requests per second per client (0 = off)")
    rate_limit_burst: int = Field(default=40, description="Requests a client may send at once")
    api_processes: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="API processes `vodscribe serve` runs (default: one per CPU it may use, at most 4; "
        "they share the rate limiter's counts, in Redis or in the data directory)",
    )
    api_read_threads: int | None = Field(
        default=None,
        ge=1,
        description="Threads that run the read routes' database work at once, per API process (default: 2 "
        "on SQLite, whose reads hold the GIL; 4 on PostgreSQL, whose reads wait on the network). More "
        "threads than that only fight over the GIL: bench/load.py --api measured it",
    )

    # --- fetching user URLs ---------------------------------------------------------------------
    allow_private_urls: bool = Field(
        default=False, description="Let user URLs reach loopback/private addresses (tests only!)"
    )
    fetch_max_bytes: int = 4 * 1024**3
    fetch_timeout_s: float = 600.0
    fetch_connect_timeout_s: float = 10.0
    fetch_max_redirects: int = 5
    fetch_allowed_ports: list[int] = Field(
        default=[80, 443, 8080, 8443], description="Ports user URLs may name (JSON list in the env)"
    )

    max_media_duration_s: float = Field(
        default=3 * 3600.0,
        description="Longest audio or video accepted, in seconds (checked from the header, enforced "
        "while decoding); 0 = no limit",
    )

    recognition_keep_s: float = Field(
        default=7 * 86400.0,
        description="How long what recognition found in a file is kept for reuse (translations)",
    )

    # --- models -------------------------------------------------------------------------------
    models_dir: Path | None = Field(
        default=None, description="Where `vodscribe models pull` puts models; default data_dir/models"
    )
    hf_endpoint: str | None = Field(
        default=None,
        description="Hub (or mirror) that `vodscribe models pull` fetches from; default the hub "
        "client's own (HF_ENDPOINT, else huggingface.co)",
    )
    models_pull_on_start: bool = Field(
        default=False,
        description="Opt-in: `serve` and `worker` pull the named models that are missing before "
        "starting (otherwise they refuse to start and print the pull command)",
    )

    # --- operations ---------------------------------------------------------------------------
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that GET /metrics requires (unset: /metrics answers 404)",
    )
    metrics_port: int = Field(
        default=0, ge=0, le=65535, description="`vodscribe worker` serves its /metrics on this port (0: off)"
    )
    metrics_host: str = Field(default="127.0.0.1", description="Bind address of the worker's /metrics")
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object a line, with task_id, video_id, request_id"
    )

    # --- ASR ----------------------------------------------------------------------------------
    asr_model: str = Field(
        default="bundled",
        description="'bundled' (Whisper base), a catalogue name (large-v3-turbo; `vodscribe models "
        "list`) or a CTranslate2 dir",
    )
    asr_device: Literal["auto", "cpu", "cuda"] = "auto"
    asr_compute_type: str = Field(default="auto", description="auto = int8 on CPU, float16 on CUDA")
    asr_beam_size: int = 5
    asr_batch_size: int = Field(
        default=-1,
        ge=-1,
        le=256,
        description="Clips Whisper decodes at once (BatchedInferencePipeline); 0 = sequential, "
        "-1 = auto: 8 on CUDA, sequential on CPU",
    )
    asr_cpu_threads: int = 0

    # --- subtitle translation -------------------------------------------------------------------
    translation_backends: str = Field(
        default="nmt,llm,whisper",
        description="Backends in order of preference; a pair goes to the first that can produce it",
    )
    nmt_models: str = Field(
        default="",
        description="Comma-separated catalogue names (nllb-200-distilled-600m, opus-mt-en-de) or "
        "CTranslate2 model dirs (NLLB, M2M100, OPUS-MT, MADLAD); 'dir=en-de' names the pair of a "
        "single-pair OPUS-MT dir whose name does not",
    )
    nmt_device: Literal["auto", "cpu", "cuda"] = "auto"
    nmt_compute_type: str = Field(default="auto", description="auto = int8 on CPU, float16 on CUDA")
    nmt_beam_size: int = 4
    llm_model: str = Field(
        default="bundled",
        description="LLM backend: 'bundled' (the vodscribe[llm] extra's model), a catalogue name "
        "(qwen2.5-7b-instruct), a GGUF file, or '' = off",
    )
    llm_threads: int = Field(default=0, description="CPU threads for the LLM (0 = all cores)")
    llm_gpu_layers: int = Field(default=-1, description="Layers offloaded to a GPU when llama.cpp has one")
    llm_parallel: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Requests the LLM decodes at once as parallel sequences (4 was fastest on 2 CPU cores: "
        "bench/README.md; a GPU may take more, not measured); each has 2,048 tokens of KV cache",
    )
    translate_together: int = Field(
        default=3,
        ge=1,
        le=16,
        description="Translation tasks of one video that a worker runs at once (its subtitle languages), "
        "so their requests share the LLM's parallel decoding; 1 = one after another",
    )
    openai_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible server for the 'openai' backend (http://host:8080/v1); unset = off",
    )
    openai_model: str = Field(default="", description="Model name sent to the OpenAI-compatible server")
    openai_api_key: SecretStr | None = Field(
        default=None, description="Bearer token for the OpenAI-compatible server (never logged)"
    )
    openai_timeout_s: float = Field(default=60.0, description="Seconds one chat completion may take")
    openai_parallel: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Chat completions sent at once (a llama.cpp server's parallel slots, vLLM's batch)",
    )
    openai_languages: str = Field(
        default="",
        description="Comma-separated ISO 639-2/B codes the server's model translates between; "
        "'' = the bundled LLM's languages",
    )

    # --- video files: local (default) or an S3-compatible bucket ---------------------------------
    s3_bucket: str | None = Field(default=None, description="Store video files in this bucket")
    s3_endpoint_url: str | None = Field(default=None, description="e.g. https://s3.example.com (MinIO...)")
    s3_region: str = "us-east-1"
    s3_prefix: str = "videos"
    s3_public_url: str | None = Field(default=None, description="Public base of the bucket (a CDN)")
    s3_object_acl: str | None = Field(
        default=None, description="e.g. public-read, where the bucket has no public-read policy"
    )
    s3_access_key: str | None = None
    s3_secret_key: str | None = None

    # --- videos -----------------------------------------------------------------------------------
    video_create_response: Literal["object", "array"] = Field(
        default="object",
        description="POST /streaming/videos answers one Video (gcore SDK >= 0.59) or [Video] (older SDKs)",
    )
    auto_transcribe_by_default: bool = Field(
        default=True, description="auto_transcribe_audio_language=auto transcribes (Gcore's account default)"
    )

    # --- direct upload (TUS, /upload/) ------------------------------------------------------------
    upload_secret: SecretStr | None = Field(
        default=None,
        description="The service's key: signs upload tokens and seals webhook secrets; default a random "
        "one kept in data_dir/upload-secret (created once, mode 0600; every process sharing the data_dir "
        "uses it)",
    )
    upload_token_ttl_s: float = Field(default=86400.0, description="How long an upload token is valid")

    @field_validator("upload_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # Set but empty (an unset variable a compose file passes on) or short: it would sign tokens
        # that anyone can make. Refused when the settings are read, so the service does not start.
        if value is not None and len(value.get_secret_value().encode()) < 16:
            raise ValueError(
                "VODSCRIBE_UPLOAD_SECRET is set but shorter than 16 bytes; unset it or make it longer"
            )
        return value

    upload_max_bytes: int | None = Field(
        default=None,
        description="Largest file a TUS upload may declare (413 beyond); default fetch_max_bytes",
    )
    upload_expiry_s: float = Field(
        default=86400.0, description="An unfinished upload idle this long is deleted (Upload-Expires)"
    )
    upload_min_free_bytes: int = Field(
        default=1024**3,
        description="Disk space that must stay free where uploads are written once every open upload "
        "has all its declared bytes (507)",
    )
    upload_max_open_per_client: int = Field(
        default=10, description="Unfinished uploads a client may have at once (429 beyond)"
    )
    upload_max_pending_bytes_per_client: int | None = Field(
        default=None,
        description="Bytes a client's unfinished uploads may still declare in all (429 beyond); "
        "default twice the upload size limit",
    )

    # --- speech requests (the OpenAI audio API, whisper-asr-webservice's /asr) --------------------
    anonymous_speech_requests: bool = Field(
        default=False,
        description="Let `/asr`, `/detect-language` and `/v1/audio/...` requests without a key run as "
        "the 'anonymous' client (its own tasks, limits and queue). Off: a key is required, as everywhere.",
    )

    # --- jobs -----------------------------------------------------------------------------------
    task_queue_limit: int = Field(default=100, description="Unfinished AI tasks allowed per client")
    max_attempts: int = 3
    heartbeat_s: float = 5.0
    stale_after_s: float = 60.0
    redispatch_after_s: float = Field(
        default=300.0, description="Re-send a task still PENDING after this long (a lost queue message)"
    )
    worker_concurrency: int = 1
    embedded_worker: bool = Field(default=True, description="`vodscribe serve` starts its own worker")

    # --- webhooks (vodscribe's extension: /streaming/webhook) -------------------------------------
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="Seconds one delivery attempt may take")
    webhook_backoff_s: float = Field(
        default=10.0, gt=0, description="Wait before the 2nd attempt; each later wait is 3 times longer"
    )
    webhook_backoff_max_s: float = Field(default=3600.0, gt=0, description="Longest wait between attempts")
    webhook_max_attempts: int = Field(default=8, ge=1, description="Attempts before a delivery is failed")
    webhook_redispatch_after_s: float = Field(
        default=120.0, gt=0, description="Re-send a delivery this long overdue (a lost queue message)"
    )
    webhook_keep_s: float = Field(
        default=7 * 86400.0, gt=0, description="How long a delivered or failed delivery stays in the log"
    )
    webhook_concurrency: int = Field(
        default=4, ge=1, description="Deliveries the embedded worker of `serve` sends at once"
    )
    webhook_concurrency_per_client: int = Field(
        default=1,
        ge=1,
        description="Deliveries of one client sent at once, by all workers together: a slow receiver "
        "holds no more of the pool than this",
    )
    webhook_defer_s: float = Field(
        default=1.0, gt=0, description="When a client has that many under way, its next waits this long"
    )

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return _sqlite_url(self.data_dir)

    @property
    def base_url(self) -> str:
        """How clients reach this service (``public_url``, else the bind address)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def asr(self) -> AsrOptions:
        return AsrOptions(
            device=self.asr_device,
            compute_type=self.asr_compute_type,
            beam_size=self.asr_beam_size,
            batch_size=self.asr_batch_size,
            cpu_threads=self.asr_cpu_threads,
        )

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def redis_broker(self) -> bool:
        return self.celery_broker_url.startswith(("redis://", "rediss://"))

    @property
    def models_path(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.data_dir / "models"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def upload_limit(self) -> int:
        return self.upload_max_bytes if self.upload_max_bytes is not None else self.fetch_max_bytes

    @property
    def upload_client_bytes(self) -> int:
        pending = self.upload_max_pending_bytes_per_client
        return pending if pending is not None else 2 * self.upload_limit

    @property
    def processes(self) -> int:
        if self.api_processes is not None:
            return self.api_processes
        return min(len(os.sched_getaffinity(0)), 4)  # the CPUs it may use (a container's cpuset)

    @property
    def read_threads(self) -> int:
        if self.api_read_threads is not None:
            return self.api_read_threads
        return 2 if self.db_url.startswith("sqlite") else 4

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"


@lru_cache(maxsize=16)
def _sqlite_url(data_dir: Path) -> str:
    """The embedded database's URL (resolving the folder stats every level of it: once, not per
    request)."""
    return f"sqlite:///{(data_dir / 'vodscribe.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
