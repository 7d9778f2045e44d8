"""The commands: ``vodscribe serve | worker | transcribe | models | keys | migrate | upload``."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

import click

from vodscribe.config import Settings, get_settings

log = logging.getLogger("vodscribe")


def share_metrics() -> Path:
    """Point this process and every process it starts at one fresh folder for their metrics
    (prometheus_client's multiprocess mode, :mod:`vodscribe.metrics`): the operator's
    ``PROMETHEUS_MULTIPROC_DIR``, else a folder of this process in the temp dir. Before anything
    imports prometheus_client, which picks its way of counting on import."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    folder = Path(given) if given else Path(tempfile.gettempdir()) / f"vodscribe-metrics-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)  # a previous run's counts are not this run's
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return folder


def _setup_logging(level: str = "INFO") -> None:
    from vodscribe.logs import setup

    setup(level, get_settings().log_format)


@click.group()
@click.version_option(package_name="vodscribe")
def main() -> None:
    """vodscribe: self-hosted, Gcore-compatible video platform with AI subtitles."""


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from vodscribe.db.session import migrate as run

    run(get_settings().db_url)
    click.echo("database is up to date")


@main.group()
def keys() -> None:
    """Manage API clients and their keys."""


@keys.command("create")
@click.argument("name")
def keys_create(name: str) -> None:
    """Create a client NAME and print its API key (shown only once)."""
    from vodscribe.db.session import migrate as run
    from vodscribe.db.session import session_scope
    from vodscribe.services.clients import create_client

    settings = get_settings()
    run(settings.db_url)
    with session_scope(settings.db_url) as s:
        client, key = create_client(s, name)
        click.echo(f"client_id={client.id}")
    click.echo(key)


def _bootstrap_key(settings: Settings) -> None:
    """On a fresh install, create a first client and write its key where the operator finds it."""
    from vodscribe.db.session import session_scope
    from vodscribe.services.clients import count_clients, create_client

    with session_scope(settings.db_url) as s:
        if count_clients(s):
            return
        _, key = create_client(s, "admin")
    path = settings.data_dir / "admin-api-key.txt"
    path.write_text(key + "\n")
    path.chmod(0o600)
    click.echo(f"Created the first API client; its key is in {path}:\n  Authorization: APIKey {key}")


def _check_models(settings: Settings) -> None:
    """Refuse to start while a model the settings name is not pulled, with the command that pulls
    it (or pull it now, when ``VODSCRIBE_MODELS_PULL_ON_START`` opts in)."""
    from vodscribe.models.catalogue import UnknownModelError, find
    from vodscribe.models.resolve import configured, unpulled
    from vodscribe.models.store import ModelError, ModelStore

    store = ModelStore(settings.models_path)
    try:
        missing = unpulled(configured(settings), store)
    except (UnknownModelError, ModelError) as exc:
        raise click.ClickException(f"Model setup: {exc}") from exc
    if not missing:
        return
    if not settings.models_pull_on_start:
        raise click.ClickException(
            "\n".join(str(m) for m in missing)
            + f"\n(models folder: {store.root}; VODSCRIBE_MODELS_PULL_ON_START=true pulls them at start)"
        )
    from vodscribe.models.pull import pull

    for m in missing:
        click.echo(f"VODSCRIBE_MODELS_PULL_ON_START: pulling {m.name}", err=True)
        try:
            pull(find(m.name, m.kind), store, endpoint=settings.hf_endpoint, say=_say)
        except ModelError as exc:
            raise click.ClickException(str(exc)) from exc


def _say(line: str) -> None:
    click.echo(line, err=True)


def _check_translation(settings: Settings) -> None:
    """Refuse to start on a broken translation setup (a bad NMT model dir, an unknown backend)."""
    from vodscribe.engines.text_translator import TranslationError
    from vodscribe.models.store import ModelError
    from vodscribe.services.translation_backends import TranslationConfigError, missing, translators_for

    try:
        backends = translators_for(settings)
    except (TranslationError, TranslationConfigError, ModelError) as exc:
        raise click.ClickException(f"Translation setup: {exc}") from exc
    click.echo("Translation backends: " + (", ".join(b.name for b in backends) or "none"), err=True)
    hint = missing(settings)
    if hint:
        click.echo(f"Translation: {hint}", err=True)


def _worker_command(queues: str, concurrency: int, pool: str, name: str = "vodscribe") -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "vodscribe.worker.app", "worker",
        "-Q", queues, "--concurrency", str(concurrency), "--pool", pool,
        "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-n", f"{name}-{os.getpid()}@%h",
    ]  # fmt: skip


@main.command()
@click.option("--host", default=None, help="Bind address (default from VODSCRIBE_HOST, 127.0.0.1)")
@click.option("--port", default=None, type=int, help="Port (default from VODSCRIBE_PORT, 8000)")
@click.option("--worker/--no-worker", default=None, help="Start the embedded worker (default on)")
def serve(host: str | None, port: int | None, worker: bool | None) -> None:
    """Run the API with its own worker (SQLite, local files, filesystem queue by default)."""
    metrics_folder = share_metrics()  # before the imports below bring prometheus_client in
    import uvicorn

    from vodscribe.api.app import create_app
    from vodscribe.db.session import migrate as run
    from vodscribe.worker.reaper import Reaper
    from vodscribe.worker.supervisor import WorkerSupervisor

    _setup_logging()
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _check_models(settings)
    _check_translation(settings)
    run(settings.db_url)
    _bootstrap_key(settings)
    supervisors = []
    if settings.embedded_worker if worker is None else worker:
        cmd = _worker_command("asr,media", settings.worker_concurrency, "solo")
        # Webhook deliveries wait on other people's servers: a worker of their own (threads, no
        # models loaded), so a slow receiver never holds the media and ASR work, nor the reverse.
        hooks = _worker_command("webhooks", settings.webhook_concurrency, "threads", "vodscribe-webhooks")
        supervisors = [WorkerSupervisor(cmd), WorkerSupervisor(hooks)]
        for supervisor in supervisors:
            supervisor.start()
    reaper = Reaper(settings)
    reaper.start()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it; turn that into SystemExit so the
    # worker and the reaper are stopped below instead of the process dying on the spot.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        # log_config=None: uvicorn's lines go through the service's handler, in its format.
        bind_host, bind_port = host or settings.host, port or settings.port
        if settings.processes > 1:  # uvicorn's processes, each with the app of app_of_process
            _say(f"API: {settings.processes} processes")
            uvicorn.run(
                "vodscribe.api.app:app_of_process",
                factory=True,
                workers=settings.processes,
                host=bind_host,
                port=bind_port,
                log_config=None,
            )
        else:
            uvicorn.run(create_app(settings), host=bind_host, port=bind_port, log_config=None)
    finally:
        reaper.stop()
        for supervisor in supervisors:
            supervisor.stop()
        shutil.rmtree(metrics_folder, ignore_errors=True)


@main.command()
@click.option("-Q", "--queues", default="asr,media", show_default=True, help="Queues to consume")
@click.option("-c", "--concurrency", default=None, type=int, help="Parallel tasks (default 1)")
@click.option(
    "--pool", default="prefork", show_default=True, type=click.Choice(["prefork", "solo", "threads"])
)
def worker(queues: str, concurrency: int | None, pool: str) -> None:
    """Run a worker that processes queued tasks (scale out: run many, on many machines)."""
    metrics_folder = share_metrics()
    from vodscribe.db.session import migrate as run
    from vodscribe.worker.supervisor import WorkerSupervisor

    _setup_logging()
    settings = get_settings()
    if settings.metrics_port:  # this machine's counts, on a port of its own (no token: bind it privately)
        from prometheus_client import start_http_server

        from vodscribe.metrics import registry

        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry())
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    if "asr" in {q.strip() for q in queues.split(",")}:  # media-only workers need no models
        _check_models(settings)
        _check_translation(settings)
    run(settings.db_url)
    cmd = _worker_command(queues, concurrency or settings.worker_concurrency, pool)
    # Kept alive, as serve keeps its own: a Celery worker holding a delayed message (a retry's
    # countdown) exits when Redis restarts (kombu 5.7's restore_unacked meets a closed connection).
    supervisor = WorkerSupervisor(cmd, own_group=False)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    supervisor.start()
    stopping.wait()
    supervisor.stop(timeout=None)  # Celery's warm shutdown: the tasks under way finish first
    shutil.rmtree(metrics_folder, ignore_errors=True)


@main.group()
def models() -> None:
    """Models by name: list the catalogue, pull (resumable, hash-locked), verify, remove.

    Models go to DATA_DIR/models (VODSCRIBE_MODELS_DIR); models.lock.json there records the commit
    and the SHA-256 of every file, checked on every load. VODSCRIBE_HF_ENDPOINT (or HF_ENDPOINT)
    names a mirror; HF_HUB_OFFLINE=1 refuses to pull. Name a model in VODSCRIBE_ASR_MODEL,
    VODSCRIBE_NMT_MODELS or VODSCRIBE_LLM_MODEL to use it.
    """


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a model")
def models_list(as_json: bool) -> None:
    """The catalogue: what is pulled, its size on disk, what it needs and which one each backend
    uses now."""
    from vodscribe.cli.model_listing import bundled_in_use, hardware, rows
    from vodscribe.models.store import ModelError

    settings = get_settings()
    machine = hardware()
    try:
        listed = rows(settings, machine)
    except ModelError as exc:  # an unreadable lock file
        raise click.ClickException(str(exc)) from exc
    if as_json:
        for row in listed:
            m = row.model
            item = {
                "name": m.name, "kind": m.kind, "repo": m.repo, "licence": m.licence,
                "commercial": m.commercial, "languages": m.languages, "size_gb": m.size_gb,
                "memory_gb": m.memory_gb, "converted": m.convert, "pulled": row.pulled,
                "disk_bytes": row.disk_bytes, "revision": row.revision, "in_use": row.in_use or None,
                "fits": row.fits, "description": m.description,
            }  # fmt: skip
            click.echo(json.dumps(item))
        return
    click.echo(f"Models folder: {settings.models_path}    This machine: {machine.describe()}")
    header = f"{'NAME':<26}{'KIND':<5}{'PULLED':<10}{'SIZE':>8}{'MEMORY':>8}  {'RUNS':<5}{'LICENCE':<14}"
    click.echo(header + f"{'LANGS':<9}USED BY")
    for row in listed:
        m = row.model
        pulled = "yes" if row.pulled else ("damaged" if row.disk_bytes is not None else "-")
        size = f"{row.disk_bytes / 1e9:.2f}G" if row.disk_bytes is not None else f"~{m.size_gb:g}G"
        licence = m.licence + ("*" if not m.commercial else "")
        click.echo(
            f"{m.name:<26}{m.kind:<5}{pulled:<10}{size:>8}{f'{m.memory_gb:g}G':>8}  {row.fits:<5}"
            f"{licence:<14}{m.languages:<9}{row.in_use}"
        )
    click.echo("Also: opus-mt-SRC-TGT, any Helsinki-NLP OPUS-MT pair (nmt, CC-BY-4.0), e.g. opus-mt-en-de.")
    click.echo("* not for commercial use. RUNS: where the model fits here (GPU: CUDA float16, CPU: int8).")
    click.echo("SIZE: on disk once pulled, else the download (~). Bundled in packages, in use now:")
    for line in bundled_in_use(settings) or ["none"]:
        click.echo(f"  {line}")


@models.command("pull")
@click.argument("names", nargs=-1, required=True)
@click.option("--update", is_flag=True, help="Take the newest commit, not the one the lock file pins")
@click.option("--quiet", is_flag=True, help="No progress bars")
def models_pull(names: tuple[str, ...], update: bool, quiet: bool) -> None:
    """Fetch models by NAME from the hub (resumes a cut transfer; converts translation checkpoints)."""
    from vodscribe.models.catalogue import UnknownModelError, find
    from vodscribe.models.pull import pull
    from vodscribe.models.store import ModelError, ModelStore

    settings = get_settings()
    store = ModelStore(settings.models_path)
    for name in names:
        try:
            model = find(name)
            if not model.commercial:
                click.echo(f"note: {model.name}'s licence ({model.licence}) forbids commercial use", err=True)
            pull(model, store, endpoint=settings.hf_endpoint, update=update, progress=not quiet, say=_say)
        except (UnknownModelError, ModelError) as exc:
            raise click.ClickException(str(exc)) from exc


@models.command("verify")
@click.argument("names", nargs=-1)
def models_verify(names: tuple[str, ...]) -> None:
    """Check every file of the pulled models (or NAMES) against the lock file's SHA-256."""
    from vodscribe.models.store import ModelError, ModelStore

    store = ModelStore(get_settings().models_path)
    try:
        wanted = list(names) or sorted(store.entries())
    except ModelError as exc:
        raise click.ClickException(str(exc)) from exc
    if not wanted:
        click.echo("no models are pulled")
        return
    bad = 0
    for name in wanted:
        problems = store.problems(name)
        if problems:
            bad += 1
            click.echo(f"{name}: FAILED")
            for problem in problems:
                click.echo(f"  {problem}")
        else:
            click.echo(f"{name}: ok")
    if bad:
        raise click.ClickException(f"{bad} model(s) do not match the lock file; pull them again")


@models.command("remove")
@click.argument("names", nargs=-1, required=True)
def models_remove(names: tuple[str, ...]) -> None:
    """Delete pulled models' files and their lock entries."""
    from vodscribe.models.store import ModelStore

    store = ModelStore(get_settings().models_path)
    for name in names:
        if not store.remove(name):
            raise click.ClickException(f"{name} is not pulled")
        click.echo(f"removed {name}")


@main.command()
@click.argument("source")
@click.option("--format", "fmt", type=click.Choice(["vtt", "srt", "json", "text"]), default="vtt")
@click.option("--language", default=None, help="Spoken language (ISO 639-2/B, e.g. ger); default: detect")
@click.option("--translate", is_flag=True, help="Translate the speech to English (same as --to eng)")
@click.option("--to", "to", default=None, help="Subtitle language to translate into (e.g. ger, fr, Spanish)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--quiet", is_flag=True, help="No progress bar")
def transcribe(
    source: str,
    fmt: str,
    language: str | None,
    translate: bool,
    to: str | None,
    output: Path | None,
    quiet: bool,
) -> None:
    """Transcribe a local FILE or an http(s) URL and print subtitles."""
    from tqdm import tqdm

    from vodscribe import languages
    from vodscribe.engines.whisper import engine_for
    from vodscribe.errors import MediaError
    from vodscribe.models.catalogue import UnknownModelError
    from vodscribe.models.store import ModelError
    from vodscribe.services.translation_backends import translators_for
    from vodscribe.speech.cues import concatenated_text
    from vodscribe.speech.subtitle_formats import to_srt, to_subtitles_json, to_vtt
    from vodscribe.speech.transcription import transcribe_file

    settings = get_settings()
    try:
        lang = languages.resolve(language) if language else None
    except languages.UnknownLanguageError as exc:
        raise click.BadParameter(str(exc), param_hint="--language") from exc
    try:
        subtitles_language = languages.resolve(to) if to else (languages.ENGLISH if translate else None)
    except languages.UnknownLanguageError as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from exc
    bar = tqdm(total=100, unit="%", disable=quiet, file=sys.stderr, bar_format="{l_bar}{bar}| {n:.0f}%")

    def progress(fraction: float) -> None:
        bar.update(max(0.0, 100 * fraction - bar.n))

    try:
        with tempfile.TemporaryDirectory(prefix="vodscribe-") as tmp:
            path = Path(source)
            if source.startswith(("http://", "https://")):
                from vodscribe.media.fetch import download  # httpx: 5 MB a local file need not carry

                bar.set_description("download")
                path = download(source, Path(tmp) / "source", settings=settings).path
            elif not path.is_file():
                raise click.BadParameter(f"{source} is not a file or an http(s) URL", param_hint="SOURCE")
            bar.set_description("load model")
            engine = engine_for(settings)
            bar.set_description("transcribe")
            result = transcribe_file(
                path,
                engine,
                language=lang.whisper if lang else None,
                subtitles_language=subtitles_language,
                translators=translators_for(settings),
                on_progress=progress,
                max_seconds=settings.max_media_duration_s,
            )
    except MediaError as exc:
        bar.close()
        raise click.ClickException(exc.message) from exc
    except (ModelError, UnknownModelError) as exc:  # a name not pulled, or a changed file
        bar.close()
        raise click.ClickException(str(exc)) from exc
    bar.close()
    cues = list(result.cues)
    if fmt == "vtt":
        text = to_vtt(cues)
    elif fmt == "srt":
        text = to_srt(cues)
    elif fmt == "text":
        text = concatenated_text(cues) + "\n"
    else:
        body = {
            "languages": [languages.from_whisper(c).b for c in result.languages],
            "speech_detected": result.speech_detected,
            "duration": result.media.duration,
            "subtitles": to_subtitles_json(cues),
        }
        text = json.dumps(body, ensure_ascii=False, indent=2) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="The video's name (default: the file's name)")
@click.option(
    "--url",
    "api_url",
    envvar="VODSCRIBE_API_URL",
    default=None,
    help="The API's base URL (env VODSCRIBE_API_URL; default VODSCRIBE_PUBLIC_URL, else http://HOST:PORT)",
)
@click.option("--api-key", envvar="VODSCRIBE_API_KEY", default=None, help="API key (env VODSCRIBE_API_KEY)")
@click.option("--chunk-mb", default=8, show_default=True, type=click.IntRange(1, 1024), help="MiB per PATCH")
@click.option("--quiet", is_flag=True, help="No progress bar")
def upload(
    file: Path, name: str | None, api_url: str | None, api_key: str | None, chunk_mb: int, quiet: bool
) -> None:
    """Upload a video FILE from this computer (create the video, then TUS; resumable: run the same
    command again after an interruption). Prints the video as JSON."""
    import httpx
    from tqdm import tqdm

    from vodscribe.cli.upload_client import UploadFailed, upload_file

    if not api_key:
        raise click.UsageError("an API key is needed: --api-key or VODSCRIBE_API_KEY")
    base = (api_url or get_settings().base_url).rstrip("/")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vodscribe" / "uploads"
    bar = tqdm(total=file.stat().st_size, unit="B", unit_scale=True, disable=quiet, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    headers = {"Authorization": f"APIKey {api_key}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=httpx.Timeout(60.0, connect=10.0)) as api:
            video = upload_file(
                api,
                file,
                name or file.name,
                state_dir=cache,
                chunk_size=chunk_mb * 1024 * 1024,
                on_progress=progress,
            )
    except (UploadFailed, httpx.HTTPError) as exc:
        bar.close()
        raise click.ClickException(str(exc)) from exc
    bar.close()
    click.echo(json.dumps(video, ensure_ascii=False))


if __name__ == "__main__":
    main()
