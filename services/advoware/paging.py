"""Reading an Advoware listing so that it can neither loop for ever nor stop early.

The assumed contract (contract.py) pages with ``skip``/``take`` and ends with an empty page.
Servers differ from it in ways that matter here:

| The server …                              | A naive reader …              | ``PageGuard`` …                      |
|-------------------------------------------|-------------------------------|--------------------------------------|
| caps pages below ``take`` (e.g. at 50)    | stops after the first page    | reads on until an **empty** page     |
| ignores ``skip`` (repeats the first page) | loops for ever                | raises ``ContractError``             |
| repeats a whole page for another reason   | loops or double-counts        | raises ``ContractError``             |
| shifts records between pages (edits)      | yields a record twice         | yields each ``betNr`` once           |
| answers no array, or items without betNr  | skips silently                | raises ``ContractError``             |

Only an empty page ends a listing, so a short page costs one more request (the empty one).
A non-empty page that brings no new ``betNr`` ends it too, loudly: what was read is not known
to be everything, so the caller must not treat unread parties as absent.
"""

from __future__ import annotations

import logging
from typing import Any

from services.advoware.contract import FIELD_KEY, PARAM_SKIP, betnr_of
from services.errors import ContractError

log = logging.getLogger(__name__)

SYSTEM = "advoware"


class PageGuard:
    """One listing's state: the ``skip`` of the next page and the ``betNr`` already yielded."""

    def __init__(self, take: int, *, what: str = "GET Beteiligte", start: int = 0) -> None:
        self.take = take
        self.what = what
        self.skip = start
        self.done = False
        self.pages = 0
        self._seen: set[int] = set()
        self._short_page: int | None = None  # size of the first short page, if any
        self._warned = False

    def accept(self, page: Any) -> list[dict[str, Any]]:
        """The records of ``page`` not yielded before; sets ``done`` at the end of the listing."""
        if not isinstance(page, list):
            raise self._error("the answer is not a JSON array")
        self.pages += 1
        if not page:
            self.done = True
            return []
        new: list[dict[str, Any]] = []
        for item in page:
            betnr = betnr_of(item)
            if betnr is None:
                raise self._error(f"an item has no numeric {FIELD_KEY}")
            if betnr not in self._seen:
                self._seen.add(betnr)
                new.append(item)
        if not new:
            raise self._error(
                f"the page at {PARAM_SKIP}={self.skip} repeats records already read"
                f" (the server seems to ignore '{PARAM_SKIP}'); stopped after {len(self._seen)} records"
            )
        self._note_page_size(len(page))
        self.skip += len(page)
        return new

    def _note_page_size(self, size: int) -> None:
        if self._short_page is not None and not self._warned:
            # A short page that was not the last: the server caps pages below `take`.
            log.warning(
                "advoware listing: pages are capped at %d (take=%d); reading on to the empty page",
                self._short_page,
                self.take,
            )
            self._warned = True
        if self._short_page is None and size < self.take:
            self._short_page = size

    def _error(self, text: str) -> ContractError:
        return ContractError(f"{self.what}: {text}", system=SYSTEM, status_code=200)
