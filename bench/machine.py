"""The machine a run was measured on (it goes into the results and under the table)."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    def out(cmd: str) -> str:
        try:
            return subprocess.run(shlex.split(cmd), capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    mem_kb = 0
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "mem_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "node": out("node --version"),
        "redis": out("redis-server --version").split(" v=")[-1].split()[0]
        if out("redis-server --version")
        else "",
        "kernel": platform.release(),
        "git": out("git rev-parse --short HEAD")
        + (" (dirty)" if out("git status --porcelain -- services steps") else ""),
    }
