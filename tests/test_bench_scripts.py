"""The benchmarks in bench/ are run by hand, so nothing else notices when a change to the package or
to the tests' helpers breaks their imports: load each of them here (without running it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"

# Each script is loaded as a module, as `python bench/X.py` would (bench/ first on the path, for its
# shared `machine` module); `__main__` is not run.
LOAD_ALL = """
import importlib.util, sys
sys.path.insert(0, sys.argv[1])
for path in sys.argv[2:]:
    spec = importlib.util.spec_from_file_location("bench_" + path.rsplit("/", 1)[-1][:-3], path)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look it up
    spec.loader.exec_module(module)
    print("loaded", path)
"""


def test_every_benchmark_loads() -> None:
    scripts = sorted(str(p) for p in BENCH.glob("*.py"))
    assert len(scripts) >= 8, scripts
    done = subprocess.run(
        [sys.executable, "-c", LOAD_ALL, str(BENCH), *scripts], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("loaded") == len(scripts), done.stdout
