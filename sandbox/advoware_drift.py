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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.admin import json_or_empty


@dataclass
class Drift:
    ignore_skip: bool = False
    page_cap: int | None = None
    records_404: bool = False
    listing_404: bool = False

    def update(self, data: dict[str, Any]) -> None:
        """Set the given keys; a bad key or value raises ValueError (nothing is changed then)."""
        known = {f.name for f in fields(self)}
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
        self.update(asdict(Drift()))

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
        return JSONResponse(asdict(drift))

    return Route("/__sandbox/drift", endpoint, methods=["GET", "POST", "DELETE"])
