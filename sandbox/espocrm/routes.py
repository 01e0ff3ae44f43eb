"""The REST routes under /api/v1: CBeteiligte, Webhook, Note, Notification and App/user.

Each handler authenticates, calls the store (or the webhook dispatcher) and maps an `EspoError`
to EspoCRM's answer: the status, an `X-Status-Reason` header and an optional JSON body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.espocrm.notes import create_note, create_notification
from sandbox.espocrm.query import parse_nested_query
from sandbox.espocrm.schema import ENTITY, EspoError, User, new_id, now_espo, validation_error
from sandbox.espocrm.store import EspoStore
from sandbox.webhooks import Dispatcher, Webhook

WEBHOOK_EVENT_RE = re.compile(rf"{ENTITY}\.(create|update|delete|fieldUpdate\.[A-Za-z0-9]+)")
MAX_WEBHOOKS_PER_USER = 50


def espo_response(status: int, body: Any = None, reason: str = "") -> Response:
    headers = {"X-Status-Reason": reason} if reason else {}
    if body is None:
        return Response(b"", status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


def truthy_header(request: Request, name: str) -> bool:
    return request.headers.get(name, "").lower() in ("true", "1")


async def read_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise EspoError(400, "Bad request body.") from exc


class EspoApi:
    def __init__(self, store: EspoStore, dispatcher: Dispatcher) -> None:
        self.store = store
        self.dispatcher = dispatcher

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/CBeteiligte", self.list_or_create, methods=["GET", "POST"]),
            Route("/api/v1/CBeteiligte/{id}", self.one, methods=["GET", "PUT", "PATCH", "DELETE"]),
            Route("/api/v1/Webhook", self.webhooks, methods=["GET", "POST"]),
            Route("/api/v1/Webhook/{id}", self.webhook_one, methods=["GET", "PUT", "PATCH", "DELETE"]),
            Route("/api/v1/Note", self.notes, methods=["GET", "POST"]),
            Route("/api/v1/Notification", self.notification, methods=["GET", "POST"]),
            Route("/api/v1/App/user", self.app_user, methods=["GET"]),
            Route("/api/v1/User/{id}", self.user_one, methods=["GET"]),
        ]

    def auth(self, request: Request) -> User:
        user = self.store.authenticate(request)
        if user is None:
            raise EspoError(401)
        info = request.scope.get("sandbox")
        if isinstance(info, dict):
            info["user"] = user.user_name
        return user

    @staticmethod
    async def handle(request: Request, fn: Callable[[Request], Awaitable[Any]]) -> Response:
        try:
            result = await fn(request)
        except EspoError as exc:
            return espo_response(exc.status, exc.body, exc.reason)
        return result if isinstance(result, Response) else JSONResponse(result)

    # --- CBeteiligte ---------------------------------------------------------------------------
    async def list_or_create(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            user = self.auth(req)
            self.store.require_entity()
            if req.method == "GET":
                return self.store.search(_search_params(req), truthy_header(req, "x-no-total"))
            data = await read_body(req)
            skip = truthy_header(req, "x-skip-duplicate-check")
            rec, item = self.store.save(data, user, skip_duplicate_check=skip)
            if item is not None:
                self.dispatcher.enqueue(f"{ENTITY}.create", item, user.id)
            return self.store.full(rec)

        return await self.handle(request, run)

    async def one(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            user = self.auth(req)
            self.store.require_entity()
            rid = req.path_params["id"]
            if req.method == "GET":
                return self.store.full(self.store.get(rid))
            if req.method == "DELETE":
                self.store.delete(rid)
                self.dispatcher.enqueue(f"{ENTITY}.delete", {"id": rid}, user.id)
                return True
            data = await read_body(req)
            rec, item = self.store.save(data, user, rid=rid, version=req.headers.get("x-version-number"))
            if item is not None:
                self._enqueue_update(rid, item, user)
            return self.store.full(rec)

        return await self.handle(request, run)

    def _enqueue_update(self, rid: str, item: dict[str, Any], user: User) -> None:
        self.dispatcher.enqueue(f"{ENTITY}.update", item, user.id)
        for key in item:
            if key != "id":
                self.dispatcher.enqueue(f"{ENTITY}.fieldUpdate.{key}", {"id": rid, key: item[key]}, user.id)

    # --- Webhook -------------------------------------------------------------------------------
    async def webhooks(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            user = self.auth(req)
            if user.type not in ("api", "admin"):
                raise EspoError(403, "No access.")
            if req.method == "GET":
                own = [
                    w.public(with_secret=False)
                    for w in self.dispatcher.webhooks.values()
                    if user.is_admin or w.user_id == user.id
                ]
                return {"total": len(own), "list": own}
            wh = self.dispatcher.add(self._new_webhook(await read_body(req), user))
            return JSONResponse(wh.public(), status_code=201)

        return await self.handle(request, run)

    def _new_webhook(self, data: Any, user: User) -> Webhook:
        if not isinstance(data, dict):
            raise EspoError(400, "Bad request data.")
        event, url = data.get("event"), data.get("url")
        if not isinstance(event, str) or not WEBHOOK_EVENT_RE.fullmatch(event) or not self.store.defs.exists:
            raise validation_error("event", entity="Webhook")
        if not isinstance(url, str) or not re.match(r"^https?://", url):
            raise validation_error("url", entity="Webhook")
        own = sum(1 for w in self.dispatcher.webhooks.values() if w.user_id == user.id)
        if not user.is_admin and own >= MAX_WEBHOOKS_PER_USER:
            raise EspoError(403, "Webhook number limit reached.")
        return Webhook(
            id=new_id(),
            event=event,
            url=url,
            user_id=user.id,
            user_name=user.user_name,
            secret_key=self.dispatcher.new_secret(),
            skip_own=bool(data.get("skipOwn", False)),
            is_active=bool(data.get("isActive", True)),
            created_at=now_espo(),
        )

    async def webhook_one(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            user = self.auth(req)
            wid = req.path_params["id"]
            wh = self.dispatcher.webhooks.get(wid)
            if wh is None or (not user.is_admin and wh.user_id != user.id):
                raise EspoError(404, f"Record {wid} not found.")
            if req.method == "GET":
                return wh.public()  # secretKey: read-only, hidden only in list views
            if req.method == "DELETE":
                self.dispatcher.remove(wid)
                return True
            return _update_webhook(wh, await read_body(req)).public()

        return await self.handle(request, run)

    # --- Note / Notification / App ---------------------------------------------------------------
    async def notes(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            user = self.auth(req)
            if req.method == "GET":
                params = parse_nested_query(list(req.query_params.multi_items()))
                notes = [
                    n
                    for n in self.store.notes
                    if not params.get("parentId") or n["parentId"] == params["parentId"]
                ]
                return {"total": len(notes), "list": notes}
            return create_note(self.store, user, await read_body(req))

        return await self.handle(request, run)

    async def notification(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            user = self.auth(req)
            if req.method == "GET":
                own = [n for n in self.store.notifications if n["userId"] == user.id]
                return {"total": len(own), "list": own}
            if not user.is_admin:
                raise EspoError(403, "No create access.")
            return create_notification(self.store, user, await read_body(req))

        return await self.handle(request, run)

    async def user_one(self, request: Request) -> Response:
        """GET /User/{id}: the fields the notifier reads (API users need read access to Users)."""

        async def run(req: Request) -> Any:
            self.auth(req)
            user = self.store.users.get(req.path_params["id"])
            if user is None:
                raise EspoError(404, f"Record {req.path_params['id']} not found.")
            return {
                "id": user.id,
                "userName": user.user_name,
                "name": user.name,
                "isActive": True,
                "type": user.type,
            }

        return await self.handle(request, run)

    async def app_user(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            user = self.auth(req)
            return {
                "user": {
                    "id": user.id,
                    "userName": user.user_name,
                    "name": user.name,
                    "type": user.type,
                    "isAdmin": user.is_admin,
                }
            }

        return await self.handle(request, run)


def _update_webhook(wh: Webhook, data: Any) -> Webhook:
    """PUT/PATCH /Webhook/{id}: `isActive`, `skipOwn` and `url` (event and user are fixed)."""
    if not isinstance(data, dict):
        raise EspoError(400, "Bad request data.")
    url = data.get("url", wh.url)
    if not isinstance(url, str) or not re.match(r"^https?://", url):
        raise validation_error("url", entity="Webhook")
    wh.url = url
    wh.is_active = bool(data.get("isActive", wh.is_active))
    wh.skip_own = bool(data.get("skipOwn", wh.skip_own))
    return wh


def _search_params(request: Request) -> dict[str, Any]:
    """The list query: PHP-style parameters, merged with a JSON `searchParams` if given."""
    params = parse_nested_query(list(request.query_params.multi_items()))
    sp = params.pop("searchParams", None)
    if sp:
        try:
            loaded = json.loads(sp)
        except ValueError as exc:
            raise EspoError(400, "Bad searchParams.") from exc
        if not isinstance(loaded, dict):
            raise EspoError(400, "Bad searchParams.")
        params.update(loaded)
    return params
