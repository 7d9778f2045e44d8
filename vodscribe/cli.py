"""Command line: ``vodscribe serve | worker | transcribe | keys | migrate``."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

import click

from vodscribe.config import Settings, get_settings

log = logging.getLogger("vodscribe")


def _setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


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


def _check_translation(settings: Settings) -> None:
    """Refuse to start on a broken translation setup (a bad NMT model dir, an unknown backend)."""
    from vodscribe.engines.text_translator import TranslationError
    from vodscribe.services.translation_backends import TranslationConfigError, missing, translators_for

    try:
        backends = translators_for(settings)
    except (TranslationError, TranslationConfigError) as exc:
        raise click.ClickException(f"Translation setup: {exc}") from exc
    click.echo("Translation backends: " + (", ".join(b.name for b in backends) or "none"), err=True)
    hint = missing(settings)
    if hint:
        click.echo(f"Translation: {hint}", err=True)


def _worker_command(queues: str, concurrency: int, pool: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "vodscribe.worker.app", "worker",
        "-Q", queues, "--concurrency", str(concurrency), "--pool", pool,
        "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-n", f"vodscribe-{os.getpid()}@%h",
    ]  # fmt: skip


@main.command()
@click.option("--host", default=None, help="Bind address (default from VODSCRIBE_HOST, 127.0.0.1)")
@click.option("--port", default=None, type=int, help="Port (default from VODSCRIBE_PORT, 8000)")
@click.option("--worker/--no-worker", default=None, help="Start the embedded worker (default on)")
def serve(host: str | None, port: int | None, worker: bool | None) -> None:
    """Run the API with its own worker (SQLite, local files, filesystem queue by default)."""
    import uvicorn

    from vodscribe.api.app import create_app
    from vodscribe.db.session import migrate as run
    from vodscribe.services.reaper import Reaper
    from vodscribe.worker.supervisor import WorkerSupervisor

    _setup_logging()
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _check_translation(settings)
    run(settings.db_url)
    _bootstrap_key(settings)
    supervisor = None
    if settings.embedded_worker if worker is None else worker:
        cmd = _worker_command("asr,media", settings.worker_concurrency, "solo")
        supervisor = WorkerSupervisor(cmd)
        supervisor.start()
    reaper = Reaper(settings)
    reaper.start()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it; turn that into SystemExit so the
    # worker and the reaper are stopped below instead of the process dying on the spot.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port)
    finally:
        reaper.stop()
        if supervisor is not None:
            supervisor.stop()


@main.command()
@click.option("-Q", "--queues", default="asr,media", show_default=True, help="Queues to consume")
@click.option("-c", "--concurrency", default=None, type=int, help="Parallel tasks (default 1)")
@click.option(
    "--pool", default="prefork", show_default=True, type=click.Choice(["prefork", "solo", "threads"])
)
def worker(queues: str, concurrency: int | None, pool: str) -> None:
    """Run a worker that processes queued tasks (scale out: run many, on many machines)."""
    from vodscribe.db.session import migrate as run

    settings = get_settings()
    _check_translation(settings)
    run(settings.db_url)
    cmd = _worker_command(queues, concurrency or settings.worker_concurrency, pool)
    os.execv(cmd[0], cmd)


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
    from vodscribe.media.fetch import download
    from vodscribe.services.translation_backends import translators_for
    from vodscribe.speech.segment import concatenated_text
    from vodscribe.speech.subtitle_formats import to_srt, to_subtitles_json, to_vtt
    from vodscribe.speech.transcription import transcribe_file

    settings = get_settings()
    try:
        lang = languages.resolve(language) if language else None
    except languages.UnknownLanguageError as exc:
        raise click.BadParameter(str(exc), param_hint="--language") from exc
    try:
        target = languages.resolve(to) if to else (languages.ENGLISH if translate else None)
    except languages.UnknownLanguageError as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from exc
    bar = tqdm(total=100, unit="%", disable=quiet, file=sys.stderr, bar_format="{l_bar}{bar}| {n:.0f}%")

    def progress(fraction: float) -> None:
        bar.update(max(0.0, 100 * fraction - bar.n))

    try:
        with tempfile.TemporaryDirectory(prefix="vodscribe-") as tmp:
            path = Path(source)
            if source.startswith(("http://", "https://")):
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
                target=target,
                translators=translators_for(settings),
                on_progress=progress,
                max_seconds=settings.max_media_duration_s,
            )
    except MediaError as exc:
        bar.close()
        raise click.ClickException(exc.message) from exc
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


if __name__ == "__main__":
    main()
