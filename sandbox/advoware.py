"""Advoware simulator: the assumed contract of shared/docs/advoware-api.md Part 2.

Token endpoint with HMAC-SHA512 signature check, Bearer tokens that expire, Beteiligte list/get/create,
PUT as a FULL replace of writable fields (omitted fields are cleared), DELETE (logged; the service
must never call it), `geaendertAm`/`angelegtAm` in the firm's local time without offset.
Records are stored in the contract's form; what goes over the wire may differ from it
(sandbox/advoware_drift.py: PascalCase, UTC stamps, `rowId`, a stamp that does not move).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import config as cfg
from sandbox.admin import admin_routes, json_or_empty
from sandbox.advoware_auth import AdvoError, TokenAuth
from sandbox.advoware_drift import FIELDS, Drift, drift_route
from sandbox.common import Fault, Harness, HarnessMiddleware, Send, send_json
from sandbox.seed import seed_for

WRITABLE_STR = [f for f in FIELDS if f not in ("betNr", "kommunikation", "angelegtAm", "geaendertAm")]
ANREDEN = {"Herr", "Frau", "Divers", "Firma"}
MAX_TAKE = 100
NOT_FOUND = "Beteiligter nicht gefunden"


class AdvoStore:
    def __init__(self, sandbox_config: cfg.SandboxConfig) -> None:
        self.config = sandbox_config
        self.tz = ZoneInfo(sandbox_config.advo_timezone)
        self.records: dict[int, dict[str, Any]] = {}
        self.next_betnr = cfg.ADVO_FIRST_BETNR
        self.auth = TokenAuth(sandbox_config)
        self.deleted: list[dict[str, Any]] = []
        self._list_cache: dict[tuple[str | None, bool], list[int]] = {}
        # Row version per record, new on every write (sent as `rowId` in the drift mode `row_id`).
        self.row_versions: dict[int, int] = {}
        self._last_version = 0
        self.manifest: dict[str, Any] = {}
        # Fault mode "a PUT answers 200 but does not apply these fields" (read-only there, a
        # sub-resource): the stored and answered value stays what it was. /__sandbox/ignore-on-put.
        self.ignore_on_put: set[str] = set()

    def reset(self, seed: int | None = None, records: int | None = None, demo: bool | None = None) -> None:
        data = seed_for(self.config, seed, records, demo)
        self.records = {r["betNr"]: r for r in data.advo}
        self.row_versions = {}
        for betnr in self.records:
            self._new_version(betnr)
        self.next_betnr = data.next_betnr
        self.deleted = []
        self.ignore_on_put = set()
        self.auth.clear()
        self._list_cache.clear()
        self.manifest = data.manifest

    def _new_version(self, betnr: int) -> None:
        self._last_version += 1
        self.row_versions[betnr] = self._last_version

    def local_now(self) -> str:
        return datetime.now(self.tz).strftime("%Y-%m-%dT%H:%M:%S")

    # --- Beteiligte --------------------------------------------------------------------------
    def get(self, betnr: int) -> dict[str, Any]:
        rec = self.records.get(betnr)
        if rec is None:
            raise AdvoError(404, NOT_FOUND)
        return rec

    def list(
        self, skip: int, take: int, geaendert_ab: str | None, drift: Drift | None = None
    ) -> list[dict[str, Any]]:
        utc = bool(drift and drift.utc_stamps)
        ids = self._list_cache.get((geaendert_ab, utc))
        if ids is None:
            if geaendert_ab is None:
                ids = sorted(self.records)
            else:
                since = self._local_param(geaendert_ab)
                since = drift.changed_since(since, self.tz) if drift else since
                ids = sorted(
                    b for b, r in self.records.items() if datetime.fromisoformat(r["geaendertAm"]) >= since
                )
            if len(self._list_cache) > 64:
                self._list_cache.clear()
            self._list_cache[(geaendert_ab, utc)] = ids
        return [copy.deepcopy(self.records[b]) for b in ids[skip : skip + take]]

    def _local_param(self, text: str) -> datetime:
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
        except ValueError as exc:
            raise AdvoError(400, f"Der Wert '{text}' ist für 'geaendertAb' ungültig.") from exc
        if value.tzinfo is not None:
            value = value.astimezone(self.tz).replace(tzinfo=None)
        return value

    def validate(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise AdvoError(400, "Die Anfrage enthält kein gültiges Beteiligten-Objekt.")
        out: dict[str, Any] = {}
        for key in WRITABLE_STR:
            value = body.get(key)
            if value is not None and not isinstance(value, str):
                raise AdvoError(400, f"Das Feld '{key}' hat einen ungültigen Wert.")
            out[key] = value
        if not (out["name"] or "").strip():
            raise AdvoError(400, "Das Feld 'name' ist ein Pflichtfeld.")
        if out["anrede"] not in (None, "") and out["anrede"] not in ANREDEN:
            raise AdvoError(400, f"Die Anrede '{out['anrede']}' ist ungültig.")
        if out["geburtsdatum"] not in (None, ""):
            text = str(out["geburtsdatum"])
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError as exc:
                raise AdvoError(400, f"Das Geburtsdatum '{text}' ist ungültig.") from exc
            out["geburtsdatum"] = parsed.strftime("%Y-%m-%d")
        komm = body.get("kommunikation")
        if komm is None:
            komm = []
        if not isinstance(komm, list):
            raise AdvoError(400, "Das Feld 'kommunikation' muss eine Liste sein.")
        items = []
        for entry in komm:
            if not isinstance(entry, dict):
                raise AdvoError(400, "Ungültiger Kommunikationseintrag.")
            kz = entry.get("kommKz")
            if isinstance(kz, bool) or not isinstance(kz, int) or not 1 <= kz <= 12:
                raise AdvoError(400, f"Ungültiges Kommunikationskennzeichen '{kz}'.")
            tlf = entry.get("tlf")
            if not isinstance(tlf, str) or not tlf.strip():
                raise AdvoError(400, "Das Feld 'tlf' ist ein Pflichtfeld.")
            bemerkung = entry.get("bemerkung")
            if bemerkung is not None and not isinstance(bemerkung, str):
                raise AdvoError(400, "Das Feld 'bemerkung' hat einen ungültigen Wert.")
            items.append(
                {"kommKz": kz, "tlf": tlf, "bemerkung": bemerkung, "online": bool(entry.get("online"))}
            )
        out["kommunikation"] = items
        return out

    def create(self, body: Any) -> dict[str, Any]:
        values = self.validate(body)
        betnr = self.next_betnr
        self.next_betnr += 1
        now = self.local_now()
        rec = {"betNr": betnr, **values, "angelegtAm": now, "geaendertAm": now}
        self.records[betnr] = {k: rec.get(k) for k in FIELDS}
        self._new_version(betnr)
        self._list_cache.clear()
        return copy.deepcopy(self.records[betnr])

    def replace(self, betnr: int, body: Any, *, keep_stamp: bool = False) -> dict[str, Any]:
        """`keep_stamp`: the drift mode `frozen_stamp` (the edit leaves `geaendertAm` as it was)."""
        old = self.get(betnr)
        values = self.validate(body)  # FULL replace: an omitted writable field is cleared
        for name in self.ignore_on_put:
            values[name] = old.get(name)
        stamp = old.get("geaendertAm") if keep_stamp else self.local_now()
        rec = {"betNr": betnr, **values, "angelegtAm": old.get("angelegtAm"), "geaendertAm": stamp}
        self.records[betnr] = {k: rec.get(k) for k in FIELDS}
        self._new_version(betnr)
        self._list_cache.clear()
        return copy.deepcopy(self.records[betnr])

    def delete(self, betnr: int) -> None:
        rec = self.get(betnr)
        self.deleted.append(rec)
        del self.records[betnr]
        self._list_cache.clear()


class AdvoSimulator:
    def __init__(self, sandbox_config: cfg.SandboxConfig) -> None:
        self.config = sandbox_config
        self.store = AdvoStore(sandbox_config)
        self.harness = Harness("advoware", sandbox_config.latency_ms, sandbox_config.timeout_fault_seconds)
        self.drift = Drift(start=dict(sandbox_config.advo_drift))
        self.drift.clear()
        self.store.reset()

        async def expire(request: Request) -> Response:
            return JSONResponse({"expired": self.store.auth.expire_tokens()})

        async def token_ttl(request: Request) -> Response:
            raw = await request.body()
            if raw:
                self.store.auth.token_ttl = int(json.loads(raw).get("token_ttl", self.store.auth.token_ttl))
            return JSONResponse({"token_ttl": self.store.auth.token_ttl})

        async def ignore_on_put(request: Request) -> Response:
            if request.method == "DELETE":
                self.store.ignore_on_put = set()
            elif request.method == "POST":
                fields = (await json_or_empty(request)).get("fields")
                if not isinstance(fields, list) or not all(f in FIELDS for f in fields):
                    return JSONResponse(
                        {"error": "fields: a list of Beteiligte field names"}, status_code=400
                    )
                self.store.ignore_on_put = set(fields)
            return JSONResponse({"fields": sorted(self.store.ignore_on_put)})

        async def deleted(request: Request) -> Response:
            return JSONResponse({"deleted": self.store.deleted})

        routes = [
            Route("/api/v1/Token", self.token, methods=["POST"]),
            Route("/api/v1/advonet/Beteiligte", self.collection, methods=["GET", "POST"]),
            Route("/api/v1/license/KuerzelForProduct/{product}", self.licensed, methods=["GET"]),
            Route("/api/v1/advonet/Beteiligte/{betnr}", self.one, methods=["GET", "PUT", "DELETE"]),
            *admin_routes(
                self.harness,
                self.admin_reset,
                self.admin_records,
                [
                    Route("/__sandbox/tokens/expire", expire, methods=["POST"]),
                    Route("/__sandbox/tokens/ttl", token_ttl, methods=["GET", "POST"]),
                    Route("/__sandbox/deleted", deleted, methods=["GET"]),
                    Route("/__sandbox/ignore-on-put", ignore_on_put, methods=["GET", "POST", "DELETE"]),
                    drift_route(self.drift),
                ],
            ),
        ]
        self.starlette = Starlette(routes=routes)
        self.app = HarnessMiddleware(self.starlette, self.harness, advo_fault_response)

    def admin_reset(self, data: dict[str, Any]) -> None:
        self.store.reset(data.get("seed"), data.get("records"), data.get("demo"))
        self.drift.clear()

    def admin_records(self) -> dict[str, Any]:
        return {
            "records": list(self.store.records.values()),
            "manifest": self.store.manifest,
            "next_betNr": self.store.next_betnr,
        }

    async def handle(self, request: Request, fn: Callable[[Request], Any], auth: bool = True) -> Response:
        try:
            if auth:
                user = self.store.auth.check_bearer(request)
                info = request.scope.get("sandbox")
                if isinstance(info, dict):
                    info["user"] = user
            return await fn(request)
        except AdvoError as exc:
            return JSONResponse({"Message": exc.message}, status_code=exc.status, headers=exc.headers)

    @staticmethod
    async def body(request: Request) -> Any:
        try:
            return json.loads(await request.body() or b"null")
        except ValueError as exc:
            raise AdvoError(400, "Der Anfrageinhalt ist kein gültiges JSON.") from exc

    async def token(self, request: Request) -> Response:
        async def run(req: Request) -> Response:
            body = await self.body(req)
            result = self.store.auth.issue_token(body)
            info = req.scope.get("sandbox")
            if isinstance(info, dict):
                info["user"] = body.get("User")
            return JSONResponse(result)

        return await self.handle(request, run, auth=False)

    async def licensed(self, request: Request) -> Response:
        """The Kürzel licensed for a product: both sandbox users for the third-party product."""

        async def run(req: Request) -> Response:
            product = req.path_params["product"]
            users = sorted(self.store.auth.users) if product == str(cfg.ADVO_PRODUCT) else []
            return JSONResponse(users)

        return await self.handle(request, run)

    def wire(self, record: dict[str, Any]) -> dict[str, Any]:
        """A stored record as this server sends it (sandbox/advoware_drift.py: casing, zone, rowId)."""
        return self.drift.outgoing(record, self.store.row_versions.get(record["betNr"], 0), self.store.tz)

    async def collection(self, request: Request) -> Response:
        async def run(req: Request) -> Response:
            if req.method == "POST":
                created = self.store.create(self.drift.incoming(await self.body(req)))
                return JSONResponse(self.wire(created), status_code=201)
            q = req.query_params
            skip = _int_query(q.get("skip"), 0, "skip")
            take = _int_query(q.get("take"), MAX_TAKE, "take")
            if take > MAX_TAKE:
                raise AdvoError(400, f"Der Parameter 'take' darf höchstens {MAX_TAKE} sein.")
            if self.drift.listing_404:
                raise AdvoError(404, "Not Found")
            rows = self.store.list(*self.drift.page(skip, take), q.get("geaendertAb") or None, self.drift)
            return JSONResponse([self.wire(r) for r in rows])

        return await self.handle(request, run)

    async def one(self, request: Request) -> Response:
        async def run(req: Request) -> Response:
            raw = req.path_params["betnr"]
            if not re.fullmatch(r"\d+", raw):
                raise AdvoError(400, f"Der Wert '{raw}' ist ungültig.")
            betnr = int(raw)
            if self.drift.records_404 and req.method in ("GET", "PUT"):
                raise AdvoError(404, NOT_FOUND)
            if req.method == "GET":
                return JSONResponse(self.wire(copy.deepcopy(self.store.get(betnr))))
            if req.method == "PUT":
                body = self.drift.incoming(await self.body(req))
                return JSONResponse(
                    self.wire(self.store.replace(betnr, body, keep_stamp=self.drift.frozen_stamp))
                )
            self.store.delete(betnr)
            return Response(status_code=204)

        return await self.handle(request, run)


def _int_query(value: str | None, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    if not re.fullmatch(r"\d+", value):
        raise AdvoError(400, f"Der Wert '{value}' ist für '{name}' ungültig.")
    return int(value)


async def advo_fault_response(fault: Fault, send: Send) -> None:
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    if fault.kind == "503_nicht_angemeldet":
        await send_json(
            send, 503, {"Message": f"Die Kanzlei {cfg.ADVO_KANZLEI} ist nicht angemeldet"}, headers
        )
        return
    status = int(fault.kind)
    await send_json(send, status, {"Message": f"Sandbox-Fehler {status}"}, headers)
