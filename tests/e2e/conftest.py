from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import Stack, run_stack


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Real Redis + sandbox simulators + real Motia runtime for the e2e package."""
    log_dir: Path = tmp_path_factory.mktemp("stack")
    with run_stack(log_dir) as s:
        yield s
