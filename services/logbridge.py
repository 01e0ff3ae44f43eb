"""Route the services' stdlib logging into Motia's per-trace logger, so a sync's log
lines appear under its trace in the Workbench (and in Motia's console output)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn"}


class MotiaLogHandler(logging.Handler):
    def __init__(self, motia_logger: Any) -> None:
        super().__init__()
        self._motia_logger = motia_logger

    def emit(self, record: logging.LogRecord) -> None:
        method = _LEVELS.get(record.levelno, "error")
        try:
            getattr(self._motia_logger, method)(record.getMessage(), {"logger": record.name})
        except Exception:  # a logging failure must never break a sync
            self.handleError(record)


@contextmanager
def motia_logging(motia_logger: Any, level: int = logging.INFO) -> Iterator[None]:
    root = logging.getLogger("services")
    handler = MotiaLogHandler(motia_logger)
    root.addHandler(handler)
    previous = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
