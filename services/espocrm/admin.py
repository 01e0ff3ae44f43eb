"""The EspoCRM calls that set an instance up and check it (shared/docs/espocrm-api.md §1, §7).

`EspoAdminClient` is an admin's session (user name and password as `Espo-Authorization`, held
in memory for the one command, never logged or stored): the Entity Manager and Field Manager.
`EspoApi` wraps the service's own API-user client (`EspoCrmClient`): the metadata any user may
read, and the webhooks, which must belong to the API user so that `skipOwn` skips the service's
own writes. Both stand on the one client base (services/http/base.py).
"""

from __future__ import annotations

import base64
from collections.abc import Generator
from typing import Any, Unpack

import httpx

from services.errors import OperationError
from services.espocrm.schema import ENTITY, ENTITY_NAME, ENTITY_TYPE, LABEL_PLURAL, LABEL_SINGULAR, FieldDef
from services.http.base import ApiClient, ClientOptions
from services.http.retry import RetrySettings

SYSTEM = "espocrm"


class PasswordAuth(httpx.Auth):
    """`Espo-Authorization: base64(user:password)`; `repr` never shows the password."""

    def __init__(self, user: str, password: str) -> None:
        self._value = base64.b64encode(f"{user}:{password}".encode()).decode()

    def __repr__(self) -> str:
        return "PasswordAuth()"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Espo-Authorization"] = self._value
        yield request


class _Espo(ApiClient):
    system = SYSTEM

    def error_reason(self, resp: httpx.Response) -> str | None:
        return resp.headers.get("X-Status-Reason") or None


class EspoAdminClient(_Espo):
    """An EspoCRM admin's session: creates and updates the entity and its fields."""

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        timeout: float,
        settings: RetrySettings,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(base_url, timeout=timeout, settings=settings, **options)
        self.auth = PasswordAuth(user, password)

    async def metadata(self) -> dict[str, Any]:
        return await metadata(self)

    async def create_entity(self) -> None:
        body = {
            "name": ENTITY_NAME,
            "type": ENTITY_TYPE,
            "labelSingular": LABEL_SINGULAR,
            "labelPlural": LABEL_PLURAL,
            "stream": True,
            "optimisticConcurrencyControl": True,
        }
        answer = await self.request(
            "POST", "EntityManager/action/createEntity", template="EntityManager/createEntity", body=body
        )
        created = answer.get("name") if isinstance(answer, dict) else None
        if created not in (None, ENTITY):
            raise OperationError(f"EspoCRM created the entity as {created!r}, the service expects {ENTITY}")

    async def update_entity(self, settings: dict[str, Any]) -> None:
        await self.request(
            "POST",
            "EntityManager/action/updateEntity",
            template="EntityManager/updateEntity",
            body={"name": ENTITY, **settings},
        )

    async def create_field(self, spec: FieldDef) -> None:
        body = {"name": spec.name, **spec.metadata()}
        await self.request(
            "POST", f"Admin/fieldManager/{ENTITY}", template="Admin/fieldManager/{scope}", body=body
        )

    async def update_field(self, name: str, changes: dict[str, Any]) -> None:
        await self.request(
            "PUT",
            f"Admin/fieldManager/{ENTITY}/{name}",
            template="Admin/fieldManager/{scope}/{name}",
            body=changes,
        )


async def metadata(client: ApiClient) -> dict[str, Any]:
    """`GET /Metadata`: the `scopes` and `entityDefs` the caller may see (any user)."""
    answer = await client.request("GET", "Metadata", template="Metadata")
    return answer if isinstance(answer, dict) else {}


async def webhooks(client: ApiClient, *, whole: bool = True) -> list[dict[str, Any]]:
    """The caller's webhooks (an API user sees only its own); `whole`: each read by id, which
    gives its owner the `secretKey` the list leaves out."""
    listing = await client.request("GET", "Webhook", template="Webhook", params={"maxSize": "200"})
    rows = [dict(r) for r in (listing.get("list") if isinstance(listing, dict) else None) or []]
    if not whole:
        return rows
    out = []
    for row in rows:
        wid = str(row["id"])
        out.append(await client.request("GET", f"Webhook/{wid}", template="Webhook/{id}", record_id=wid))
    return out


async def create_webhook(client: ApiClient, event: str, url: str) -> dict[str, Any]:
    body = {"event": f"{ENTITY}.{event}", "url": url, "skipOwn": True, "isActive": True}
    answer: dict[str, Any] = await client.request("POST", "Webhook", template="Webhook", body=body)
    return answer


async def update_webhook(client: ApiClient, webhook_id: str, changes: dict[str, Any]) -> None:
    await client.request(
        "PUT", f"Webhook/{webhook_id}", template="Webhook/{id}", record_id=webhook_id, body=changes
    )
