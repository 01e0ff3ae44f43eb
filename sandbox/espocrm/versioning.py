"""Optimistic concurrency of the simulated `CBeteiligte` (shared/docs/espocrm-api.md §2.3).

Off by default, like an entity without "optimistic concurrency control"; switched at run time
with `POST /__sandbox/versioning {"enabled": true}` (GET shows it, `/__sandbox/reset` turns it off).

While on, every record carries `versionNumber` (1 when created or when versioning is switched on,
+1 at every update). A PUT/PATCH sent with `X-Version-Number: n` is refused with 409, reason
`modified`, body `{"values": {…stored values of the written fields…}, "versionNumber": current}`,
when `n` differs from the stored version *and* a written field differs from its stored value
(EspoCRM's rule: a write that changes nothing the other writer changed passes).

Compared with EspoCRM's own check (Record Service `processConcurrencyControl`, since 8.x
`ConcurrencyControl/OptimisticProcessor`): the same rule - no check without a stored version or
with the version sent; 409 only when a written attribute differs from its stored value. EspoCRM
also skips read-only fields and fields marked `optimisticConcurrencyControlIgnore` (none of the
fields the service writes), and its `values` list every attribute of a differing field. Records
that existed before the setting was switched on get version 1 here; what EspoCRM gives them is not
verified (a record returned without `versionNumber` is written without the check).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from sandbox.espocrm.schema import EspoError

FIELD = "versionNumber"


class Versioning:
    def __init__(self) -> None:
        self.enabled = False

    def switch(self, enabled: bool, records: Iterable[dict[str, Any]]) -> None:
        self.enabled = enabled
        if enabled:
            for rec in records:
                rec.setdefault(FIELD, 1)

    def check(self, old: dict[str, Any], written: dict[str, Any], sent: str | None) -> None:
        """Refuse a stale versioned write (409 `modified`), as EspoCRM does."""
        if not self.enabled or sent is None:
            return
        try:
            version = int(sent)
        except ValueError:
            raise EspoError(400, "Bad X-Version-Number.") from None
        current = int(old.get(FIELD) or 1)
        if version == current:
            return
        differing = {k: copy.deepcopy(old.get(k)) for k, v in written.items() if old.get(k) != v}
        if differing:
            raise EspoError(409, "modified", {"values": differing, FIELD: current})

    def stamp(self, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        if self.enabled:
            new[FIELD] = 1 if old is None else int(old.get(FIELD) or 1) + 1
