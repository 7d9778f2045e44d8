"""What machine a benchmark ran on: the CPU model and the instruction sets that change results.

int8 matrix products (CTranslate2 through oneDNN) and llama.cpp take other code paths with and
without AVX-512, so their last digits differ between machines; a figure is only comparable with
one from the same kind of CPU."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

#: The CPU flags that pick a different kernel somewhere in the stack (x86-64).
FLAGS = (
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
)
#: Settings that force a narrower instruction set (to reproduce another machine's results).
ISA_SETTINGS = ("CT2_FORCE_CPU_ISA", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


def cpu() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set[str]()
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    return {
        "model": model,
        "flags": [flag for flag in FLAGS if flag in flags],
        "avx512": "avx512f" in flags,
        "forced_isa": {name: os.environ[name] for name in ISA_SETTINGS if name in os.environ},
        "count": os.cpu_count(),
    }
