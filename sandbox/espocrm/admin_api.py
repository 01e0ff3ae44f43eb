"""The administration API of the simulated EspoCRM (shared/docs/espocrm-api.md §7), as setting
an instance up uses it:

- `GET /api/v1/Metadata` (any user): the instance's `scopes` and `entityDefs` of `CBeteiligte`.
- `POST /api/v1/EntityManager/action/createEntity` `{name, type, labelSingular, labelPlural,
  stream, optimisticConcurrencyControl}` → `{name}` with EspoCRM's `C` prefix (`Beteiligte` →
  `CBeteiligte`); a name in use → 409. `updateEntity` `{name, stream, optimisticConcurrencyControl}`.
- `POST /api/v1/Admin/fieldManager/{scope}` `{name, type, …}` (an existing field → 409);
  `GET`/`PUT`/`PATCH`/`DELETE /api/v1/Admin/fieldManager/{scope}/{name}` (a type change → 400).
- `POST /api/v1/Admin/rebuild`, `POST /api/v1/Admin/clearCache` → `true`.

Everything but Metadata is for admins only (403 `Forbidden` otherwise; an API user is never an
admin); admins log in with user name and password (`Espo-Authorization`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.espocrm.routes import EspoApi, read_body
from sandbox.espocrm.schema import ENTITY, EspoError, User
from sandbox.espocrm.store import EspoStore

FIELD_TYPES = frozenset(
    {
        "varchar",
        "text",
        "enum",
        "multiEnum",
        "int",
        "float",
        "bool",
        "date",
        "datetime",
        "email",
        "phone",
        "url",
    }
)
ENTITY_TYPES = frozenset({"Base", "BasePlus", "Person", "Company", "Event"})
# What the Field Manager keeps of a definition (the rest of a request body is ignored).
FIELD_PARAMS = ("type", "options", "typeList", "maxLength", "default", "defaultType", "required")


@dataclass
class AdminApi:
    store: EspoStore
    api: EspoApi

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/Metadata", self.metadata, methods=["GET"]),
            Route("/api/v1/EntityManager/action/{action}", self.entity_manager, methods=["POST"]),
            Route("/api/v1/Admin/fieldManager/{scope}", self.field_create, methods=["POST"]),
            Route(
                "/api/v1/Admin/fieldManager/{scope}/{name}",
                self.field_one,
                methods=["GET", "PUT", "PATCH", "DELETE"],
            ),
            Route("/api/v1/Admin/{action:str}", self.admin_action, methods=["POST"]),
        ]

    def admin(self, request: Request) -> User:
        user = self.api.auth(request)
        if not user.is_admin:
            raise EspoError(403, "Forbidden")
        return user

    async def metadata(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            self.api.auth(req)
            return self.store.defs.as_metadata(ENTITY, self.store.versioning.enabled)

        return await self.api.handle(request, run)

    async def entity_manager(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            self.admin(req)
            data = _object(await read_body(req))
            action = req.path_params["action"]
            if action == "createEntity":
                return self._create_entity(data)
            if action == "updateEntity":
                return self._update_entity(data)
            raise EspoError(404, f"Action {action} does not exist.")

        return await self.api.handle(request, run)

    def _create_entity(self, data: dict[str, Any]) -> dict[str, Any]:
        name, entity_type = data.get("name"), data.get("type")
        if not isinstance(name, str) or not name or entity_type not in ENTITY_TYPES:
            raise EspoError(400, "Bad request.")
        full = "C" + name[0].upper() + name[1:]  # custom entities get EspoCRM's `C` prefix
        if full != ENTITY:
            raise EspoError(400, f"The simulator serves {ENTITY} only.")
        if self.store.defs.exists:
            raise EspoError(409, f"Entity '{full}' already exists.")
        labels = (str(data.get("labelSingular") or name), str(data.get("labelPlural") or name))
        self.store.defs.create(str(entity_type), stream=bool(data.get("stream")), labels=labels)
        self.store.records.clear()
        self.store.by_betnr.clear()
        self.store.versioning.switch(bool(data.get("optimisticConcurrencyControl")), ())
        return {"name": full}

    def _update_entity(self, data: dict[str, Any]) -> bool:
        if data.get("name") != ENTITY or not self.store.defs.exists:
            raise EspoError(404, f"Entity '{data.get('name')}' does not exist.")
        if "stream" in data:
            self.store.defs.scope["stream"] = bool(data["stream"])
        if "optimisticConcurrencyControl" in data:
            occ = bool(data["optimisticConcurrencyControl"])
            self.store.versioning.switch(occ, self.store.records.values())
        return True

    async def field_create(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            self.admin(req)
            self._scope(req)
            data = _object(await read_body(req))
            name = data.get("name")
            if not isinstance(name, str) or not name:
                raise EspoError(400, "Bad request.")
            if name in self.store.defs.fields:
                raise EspoError(409, f"Field '{name}' already exists.")
            if data.get("type") not in FIELD_TYPES:
                raise EspoError(400, "Bad field type.")
            self.store.defs.set_field(name, _definition(data, custom=True))
            return self.store.defs.fields[name]

        return await self.api.handle(request, run)

    async def field_one(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            self.admin(req)
            self._scope(req)
            name = req.path_params["name"]
            current = self.store.defs.fields.get(name)
            if current is None:
                raise EspoError(404, f"Field '{name}' does not exist.")
            if req.method == "GET":
                return current
            if req.method == "DELETE":
                self.store.defs.remove_field(name)
                return True
            data = _object(await read_body(req))
            if data.get("type", current["type"]) != current["type"]:
                raise EspoError(400, "The type of an existing field cannot be changed.")
            updated = {**current, **_definition(data, custom=bool(current.get("isCustom")))}
            updated["type"] = current["type"]
            self.store.defs.set_field(name, updated)
            return self.store.defs.fields[name]

        return await self.api.handle(request, run)

    async def admin_action(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            self.admin(req)
            if req.path_params["action"] not in ("rebuild", "clearCache"):
                raise EspoError(404, "Not found.")
            return True

        return await self.api.handle(request, run)

    def _scope(self, request: Request) -> None:
        scope = request.path_params["scope"]
        if scope != ENTITY or not self.store.defs.exists:
            raise EspoError(404, f"Scope '{scope}' does not exist.")


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise EspoError(400, "Bad request data.")
    return data


def _definition(data: dict[str, Any], *, custom: bool) -> dict[str, Any]:
    out = {k: data[k] for k in FIELD_PARAMS if k in data and data[k] is not None}
    if custom:
        out["isCustom"] = True
    return out
