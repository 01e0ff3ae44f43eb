"""Loading a Motia step file as a module, the way Motia does: by path, not as a package."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def load_step(path: Path, name: str | None = None) -> ModuleType:
    """Import the step at `path` under `name` (default: the file's stem)."""
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
