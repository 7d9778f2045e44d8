"""Settings to model files: ``VODSCRIBE_ASR_MODEL``, ``VODSCRIBE_NMT_MODELS`` and
``VODSCRIBE_LLM_MODEL`` take a catalogue name (``large-v3-turbo``), ``bundled`` (the model shipped
in packages) or a path (as before names existed).

:func:`locate` is cheap (the lock and file sizes) and serves the API server and the start-up
check; :func:`load_path` also checks every file's SHA-256 against the lock and is called right
before an engine loads the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vodscribe.config import Settings
from vodscribe.models import catalogue
from vodscribe.models.catalogue import CatalogueModel, Kind, UnknownModelError
from vodscribe.models.store import ModelError, ModelNotPulledError, ModelStore

__all__ = [
    "ModelRef",
    "configured",
    "gguf_file",
    "identity",
    "load_path",
    "locate",
    "ref",
    "refs",
    "unpulled",
    "weights",
]


@dataclass(frozen=True, slots=True)
class ModelRef:
    """One model a setting names."""

    kind: Kind
    value: str
    """The setting as written (a name, ``bundled`` or a path)."""
    model: CatalogueModel | None
    """The catalogue entry when ``value`` is a name."""

    @property
    def name(self) -> str | None:
        return self.model.name if self.model is not None else None

    @property
    def bundled(self) -> bool:
        """The model shipped in packages."""
        return self.model is None and catalogue.is_bundled(self.value)


def ref(kind: Kind, value: str) -> ModelRef:
    """Read one setting value: a catalogue name, or anything else as it was (bundled, a path).

    A value that looks like a name but is in no catalogue is refused, unless such a file or folder
    exists (a relative path without a slash)."""
    value = value.strip()
    if not catalogue.is_name(value):
        return ModelRef(kind, value, None)
    try:
        return ModelRef(kind, value, catalogue.find(value, kind))
    except UnknownModelError:
        if Path(value).exists():
            return ModelRef(kind, value, None)
        raise


def refs(kind: Kind, values: str) -> list[tuple[ModelRef, str]]:
    """Comma-separated values (``VODSCRIBE_NMT_MODELS``), each with its ``=pair`` suffix if any."""
    out = []
    for entry in (e.strip() for e in values.split(",")):
        if entry:
            value, _, pair = entry.partition("=")
            out.append((ref(kind, value), pair.strip()))
    return out


def locate(r: ModelRef, store: ModelStore) -> Path:
    """Where the files of ``r`` are: its folder in the store (present, sizes as locked), or the
    path as given. Raises :class:`ModelNotPulledError` with the command to run."""
    if r.model is None:
        return Path(r.value).expanduser()
    if store.installed(r.model.name) is None:
        raise ModelNotPulledError(r.model.name, r.kind)
    return store.folder(r.model.name)


def load_path(r: ModelRef, store: ModelStore) -> Path:
    """:func:`locate`, with every file's SHA-256 checked against the lock (once per process)."""
    if r.model is None:
        return Path(r.value).expanduser()
    return store.verified(r.model.name, r.kind)


def weights(r: ModelRef, store: ModelStore) -> Path | None:
    """What an engine loads: :func:`load_path`, or None for the model shipped in packages."""
    return None if r.bundled else load_path(r, store)


def identity(r: ModelRef, store: ModelStore) -> str:
    """What identifies the weights ``r`` loads: a name with its locked commit, else the value."""
    if r.model is None:
        return r.value
    entry = store.entry(r.model.name)
    return f"{r.model.name}@{entry.revision}" if entry is not None else r.model.name


def gguf_file(folder: Path) -> Path:
    """The file llama.cpp opens in a GGUF model folder: the only one, or the first of a split
    set (``-00001-of-00002.gguf``; llama.cpp finds the others beside it)."""
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelError(f"{folder} has no .gguf file")
    return files[0]


def configured(settings: Settings) -> list[ModelRef]:
    """The models the settings use now: the ASR model, and the NMT and chat models of the
    translation backends that are in ``VODSCRIBE_TRANSLATION_BACKENDS``."""
    order = {b.strip().lower() for b in settings.translation_backends.split(",")}
    out = [ref("asr", settings.asr_model)]
    if "nmt" in order:
        out += [r for r, _ in refs("nmt", settings.nmt_models)]
    if "llm" in order and settings.llm_model.strip():
        out.append(ref("llm", settings.llm_model))
    return out


def unpulled(refs_: list[ModelRef], store: ModelStore) -> list[ModelNotPulledError]:
    """The named models among ``refs_`` that are not pulled (the start-up check)."""
    missing = []
    for r in refs_:
        try:
            locate(r, store)
        except ModelNotPulledError as exc:
            missing.append(exc)
    return missing
