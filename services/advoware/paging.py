"""Reading an Advoware listing so that it can neither loop for ever nor stop early.

The assumed contract (contract.py) pages with ``skip``/``take`` and ends with an empty page.
Servers differ from it in ways that matter here:

| The server …                              | A naive reader …              | ``PageGuard`` …                      |
|-------------------------------------------|-------------------------------|--------------------------------------|
| caps pages below ``take`` (e.g. at 50)    | stops after the first page    | reads on until an **empty** page     |
| ignores ``skip`` (repeats the first page) | loops for ever                | raises ``ContractError``             |
| repeats the page before it                | loops or double-counts        | raises ``ContractError``             |
| shifts records between pages (edits)      | yields a record twice         | yields each ``betNr`` once           |
| shifts a whole page of read records into  | stops, or fails the sweep     | reads on; raises only after          |
| the next one (records edited meanwhile    |                               | ``MAX_REPEAT_PAGES`` such pages in a |
| join a changed-since listing before it)   |                               | row                                  |
| answers no array, or items without betNr  | skips silently                | raises ``ContractError``             |

Only an empty page ends a listing, so a short page costs one more request (the empty one).
A non-empty page that brings no new ``betNr`` and repeats the first or the previous page ends it
too, loudly: what was read is not known to be everything, so the caller must not treat unread
parties as absent. Any other page of read records is a shift: the sweep's changed-since listing
is sorted by ``betNr``, and parties edited while it is read (the syncs it started write to
Advoware) join it before the page being read (a sweep failed with 500 that way under load).
"""

from __future__ import annotations

import logging
from typing import Any

from services.advoware.contract import FIELD_KEY, PARAM_SKIP, betnr_of
from services.errors import ContractError

log = logging.getLogger(__name__)

SYSTEM = "advoware"
# Pages in a row that bring nothing new without repeating the first or the previous page: more
# than a few means the server pages in a way this reader does not understand.
MAX_REPEAT_PAGES = 3


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
        self._first: list[int] | None = None  # the betNr of the first and the previous page
        self._previous: list[int] | None = None
        self._repeats = 0  # pages in a row without a new betNr

    def accept(self, page: Any) -> list[dict[str, Any]]:
        """The records of ``page`` not yielded before; sets ``done`` at the end of the listing."""
        if not isinstance(page, list):
            raise self._error("the answer is not a JSON array")
        self.pages += 1
        if not page:
            self.done = True
            return []
        new: list[dict[str, Any]] = []
        numbers: list[int] = []
        for item in page:
            betnr = betnr_of(item)
            if betnr is None:
                raise self._error(f"an item has no numeric {FIELD_KEY}")
            numbers.append(betnr)
            if betnr not in self._seen:
                self._seen.add(betnr)
                new.append(item)
        self._repeats = 0 if new else self._repeats + 1
        if not new and (numbers in (self._first, self._previous) or self._repeats >= MAX_REPEAT_PAGES):
            raise self._error(
                f"the page at {PARAM_SKIP}={self.skip} repeats records already read"
                f" (the server seems to ignore '{PARAM_SKIP}'); stopped after {len(self._seen)} records"
            )
        if self._first is None:
            self._first = numbers
        self._previous = numbers
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
