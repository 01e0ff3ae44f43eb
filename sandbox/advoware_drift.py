"""Contract drift of the Advoware simulator: a server that differs from the assumed contract
(shared/docs/advoware-api.md §2.1) the way real connectors can, for end-to-end tests of the
defensive adapter (issue 16).

Toggled like the other run-time modes, at ``/__sandbox/drift`` (GET shows, POST sets the
given keys, DELETE and ``/__sandbox/reset`` clear):

| key            | the server …                                                        |
|----------------|---------------------------------------------------------------------|
| `ignore_skip`  | ignores `skip`: every listing page is the first one                 |
| `page_cap`     | answers at most N records per listing page, whatever `take` asks    |
| `records_404`  | answers 404 for every record read or write by `betNr` (GET, PUT)    |
| `listing_404`  | answers 404 on the listing too (with `records_404`: a misrouted URL) |
| `frozen_stamp` | leaves `geaendertAm` unchanged on a PUT (a stamp that lies: issue 21)|
| `pascal_case`  | spells every field in PascalCase (`BetNr`, `GeaendertAm`, `KommKz`) |
|                | and reads request bodies case-insensitively, as ASP.NET does       |
| `utc_stamps`   | writes `geaendertAm`/`angelegtAm` in UTC (no offset, like the      |
|                | vendor's `ZuletztGeaendertAm`) and reads `geaendertAb` as UTC      |
| `row_id`       | sends `rowId` (base64, new on every write), as bitbylaw's notes say |

A simulator started with `--advo-drift pascal_case,utc_stamps` (sandbox/config.py `advo_drift`)
begins in those modes, and DELETE / reset return to them rather than to the contract.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.admin import json_or_empty
from services.advoware.contract import FIELD_ROW_ID, KNOWN_FIELDS, KOMMUNIKATION_FIELDS

STAMPS = ("geaendertAm", "angelegtAm")
# The simulated party's fields are the contract's (services/advoware/contract.py): one list to
# change when a field is added. The row version is not stored: it is made anew on each send.
FIELDS = [f for f in KNOWN_FIELDS if f != FIELD_ROW_ID]


def _pascal(obj: dict[str, Any]) -> dict[str, Any]:
    return {(k[:1].upper() + k[1:]) if isinstance(k, str) else k: v for k, v in obj.items()}


def _contract_names(obj: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    by_fold = {n.casefold(): n for n in names}
    return {by_fold.get(k.casefold(), k) if isinstance(k, str) else k: v for k, v in obj.items()}


@dataclass
class Drift:
    ignore_skip: bool = False
    page_cap: int | None = None
    records_404: bool = False
    listing_404: bool = False
    frozen_stamp: bool = False
    pascal_case: bool = False
    utc_stamps: bool = False
    row_id: bool = False
    # The modes the simulator was started in (sandbox/config.py): what `clear` returns to.
    start: dict[str, Any] = field(default_factory=dict, repr=False)

    def update(self, data: dict[str, Any]) -> None:
        """Set the given keys; a bad key or value raises ValueError (nothing is changed then)."""
        known = {f.name for f in fields(self)} - {"start"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown drift keys {unknown}; known: {sorted(known)}")
        cap = data.get("page_cap", self.page_cap)
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ValueError("page_cap must be a positive integer or null")
        flags = {k: v for k, v in data.items() if k != "page_cap"}
        if any(not isinstance(v, bool) for v in flags.values()):
            raise ValueError("drift flags must be true or false")
        for name, value in flags.items():
            setattr(self, name, value)
        self.page_cap = cap

    def clear(self) -> None:
        self.update({**Drift().state(), **self.start})

    def state(self) -> dict[str, Any]:
        """The modes as the admin endpoint shows them."""
        out = asdict(self)
        out.pop("start")
        return out

    # ------------------------------------------------------------------ the wire format
    def outgoing(self, record: dict[str, Any], row_version: int, tz: ZoneInfo) -> dict[str, Any]:
        """A stored record (the contract's names, local stamps) as this server sends it."""
        out = dict(record)
        if self.utc_stamps:
            for name in STAMPS:
                if out.get(name):
                    local = datetime.fromisoformat(out[name]).replace(tzinfo=tz)
                    out[name] = local.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
        if self.row_id:
            out[FIELD_ROW_ID] = base64.b64encode(row_version.to_bytes(8, "big")).decode()
        if self.pascal_case:
            out = _pascal(out)
            out["Kommunikation"] = [_pascal(e) for e in out.get("Kommunikation") or []]
        return out

    def incoming(self, body: Any) -> Any:
        """A request body in the contract's names (PascalCase mode: any casing, as ASP.NET binds)."""
        if not self.pascal_case or not isinstance(body, dict):
            return body
        out = _contract_names(body, KNOWN_FIELDS)
        entries = out.get("kommunikation")
        if isinstance(entries, list):
            out["kommunikation"] = [
                _contract_names(e, KOMMUNIKATION_FIELDS) if isinstance(e, dict) else e for e in entries
            ]
        return out

    def changed_since(self, value: datetime, tz: ZoneInfo) -> datetime:
        """`geaendertAb` (naive) as the stored local time: in UTC-stamp mode it is UTC."""
        if self.utc_stamps and value.tzinfo is None:
            return value.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
        return value

    def page(self, skip: int, take: int) -> tuple[int, int]:
        """The (skip, take) the drifting server really uses for a listing page."""
        if self.ignore_skip:
            skip = 0
        if self.page_cap is not None:
            take = min(take, self.page_cap)
        return skip, take


def drift_route(drift: Drift) -> Route:
    async def endpoint(request: Request) -> Response:
        if request.method == "DELETE":
            drift.clear()
        elif request.method == "POST":
            try:
                drift.update(await json_or_empty(request))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(drift.state())

    return Route("/__sandbox/drift", endpoint, methods=["GET", "POST", "DELETE"])
