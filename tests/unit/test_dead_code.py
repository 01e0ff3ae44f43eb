"""No dead code: vulture as `make lint` runs it (configuration in pyproject.toml `[tool.vulture]`).

Here too so that the fast unit run everyone does before landing shows it. A name vulture cannot
see used (a framework hook, a stored field) goes into vulture_whitelist.py with its reason.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_vulture_finds_no_dead_code() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "vulture"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
