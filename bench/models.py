"""Models benchmark: what pulling by name and checking hashes on every load cost.

    python bench/models.py [--runs 3] > models.json

Serves the bundled Whisper base files (145 MB model.bin) from a hub on 127.0.0.1 (``tests/hub.py``)
and measures, in the same process, each against its baseline:

* ``pull``: ``vodscribe models pull base`` (``vodscribe.models.pull.pull``: the hub client for the
  commit, file list and metadata, our resumable transfer, SHA-256 of every file, the lock) against
  the hub client's own ``snapshot_download`` of the same files into a folder (no hashing, no lock);
* ``verify_on_load``: checking every file against the lock (what each process does once before it
  loads a pulled model) against loading the model itself (faster-whisper's ``WhisperModel``, int8
  on CPU), the cost the check adds to a worker's start.

Prints one JSON document: seconds per run (median of ``--runs``), ratios, MB/s, and the machine.
Loopback transfer speed says nothing about the internet; the ratio says what our layer adds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hub import running_hub  # noqa: E402
from vodscribe.engines import bundled_model  # noqa: E402
from vodscribe.models.catalogue import find  # noqa: E402
from vodscribe.models.pull import pull  # noqa: E402
from vodscribe.models.store import ModelStore, _verified  # noqa: E402


def _timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from faster_whisper import WhisperModel
    from huggingface_hub import snapshot_download

    files = bundled_model.load_files()
    size = sum(len(v) for v in files.values())
    result: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "load_average_1m_at_start": os.getloadavg()[0]},
        "model": "Whisper base (bundled files served as Systran/faster-whisper-base)",
        "bytes": size,
        "runs": args.runs,
    }
    ours, theirs, verify, load = [], [], [], []
    with running_hub() as hub, tempfile.TemporaryDirectory() as tmp:
        hub.publish("Systran/faster-whisper-base", files)
        for i in range(args.runs):
            store = ModelStore(Path(tmp) / f"ours{i}")
            ours.append(_timed(lambda s=store: pull(find("base"), s, endpoint=hub.url, progress=False)))
            folder = Path(tmp) / f"theirs{i}"
            theirs.append(
                _timed(
                    lambda f=folder: snapshot_download(
                        "Systran/faster-whisper-base", local_dir=f, endpoint=hub.url, max_workers=2
                    )
                )
            )
            _verified.clear()  # a fresh process hashes every file once
            verify.append(_timed(lambda s=store: s.verified("base", "asr")))
            path = str(store.folder("base"))
            load.append(_timed(lambda p=path: WhisperModel(p, device="cpu", compute_type="int8")))
            shutil.rmtree(folder, ignore_errors=True)
    med = statistics.median
    result["pull"] = {
        "ours_s": round(med(ours), 3),
        "snapshot_download_s": round(med(theirs), 3),
        "ratio": round(med(ours) / med(theirs), 2),
        "ours_mb_per_s": round(size / 1e6 / med(ours), 1),
    }
    result["verify_on_load"] = {
        "sha256_check_s": round(med(verify), 3),
        "model_load_s": round(med(load), 3),
        "ratio": round(med(verify) / med(load), 2),
        "sha256_mb_per_s": round(size / 1e6 / med(verify), 1),
    }
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
