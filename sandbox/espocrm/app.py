"""The EspoCRM simulator app: store + REST routes + webhook dispatcher + /__sandbox admin endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import config as cfg
from sandbox.admin import admin_routes, json_or_empty
from sandbox.common import Fault, Harness, HarnessMiddleware, Send, send_json
from sandbox.espocrm.admin_api import AdminApi
from sandbox.espocrm.routes import EspoApi
from sandbox.espocrm.schema import ENTITY, now_espo
from sandbox.espocrm.store import EspoStore
from sandbox.webhooks import Dispatcher, DispatcherSettings, Webhook

# Dispatcher settings the admin endpoint may change at run time.
TUNABLE_SETTINGS = (
    "interval",
    "retry_delay",
    "timeout",
    "max_attempts",
    "batch_size",
    "shuffle",
    "shuffle_items",
    "paused",
)


class EspoSimulator:
    def __init__(self, sandbox_config: cfg.SandboxConfig) -> None:
        self.config = sandbox_config
        self.store = EspoStore(sandbox_config)
        self.harness = Harness("espocrm", sandbox_config.latency_ms, sandbox_config.timeout_fault_seconds)
        self.dispatcher = Dispatcher(
            DispatcherSettings(
                interval=sandbox_config.webhook_interval,
                retry_delay=sandbox_config.webhook_retry_delay,
                timeout=sandbox_config.webhook_timeout,
                max_attempts=sandbox_config.webhook_max_attempts,
                batch_size=sandbox_config.webhook_batch_size,
                shuffle=sandbox_config.webhook_shuffle,
                seed=sandbox_config.seed,
            )
        )
        self.api = EspoApi(self.store, self.dispatcher)
        self.reset()
        routes = [
            *self.api.routes(),
            *AdminApi(self.store, self.api).routes(),
            *admin_routes(self.harness, self.admin_reset, self.admin_records, self.admin_extra()),
        ]
        self.starlette = Starlette(routes=routes, lifespan=self._lifespan)
        self.app = HarnessMiddleware(self.starlette, self.harness, espo_fault_response)

    def reset(self, seed: int | None = None, records: int | None = None, demo: bool | None = None) -> None:
        self.store.reset(seed, records, demo)
        for wid in list(self.dispatcher.webhooks):
            self.dispatcher.remove(wid)
        self.dispatcher.log.clear()
        self.dispatcher.delivered.clear()
        if self.config.webhooks_enabled and self.store.defs.exists:
            api = self.store.users[cfg.ESPO_API_USER_ID]
            for event, (wid, secret) in cfg.WEBHOOKS.items():
                self.dispatcher.add(
                    Webhook(
                        id=wid,
                        event=f"{ENTITY}.{event}",
                        url=self.config.webhook_url(event),
                        user_id=api.id,
                        user_name=api.user_name,
                        secret_key=secret,
                        skip_own=True,
                        created_at=now_espo(),
                    )
                )

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.dispatcher.start()
        try:
            yield
        finally:
            await self.dispatcher.stop()

    # --- admin ---------------------------------------------------------------------------------
    def admin_reset(self, data: dict[str, Any]) -> None:
        self.reset(data.get("seed"), data.get("records"), data.get("demo"))

    def admin_records(self) -> dict[str, Any]:
        return {
            "records": [self.store.full(r) for r in self.store.records.values()],
            "manifest": self.store.manifest,
        }

    def admin_extra(self) -> list[Route]:
        d = self.dispatcher

        async def webhooks_state(request: Request) -> Response:
            limit = int(request.query_params.get("log", "200"))
            return JSONResponse(
                {
                    "webhooks": [w.public() for w in d.webhooks.values()],
                    "pending": d.pending(),
                    "retrying": len(d.retries),
                    "stats": d.stats,
                    "settings": vars(d.settings),
                    "log": list(d.log)[-limit:],
                }
            )

        async def webhooks_flush(request: Request) -> Response:
            data = await json_or_empty(request)
            results = await d.tick(force_retries=bool(data.get("force_retries", False)))
            return JSONResponse({"deliveries": results, "pending": d.pending(), "retrying": len(d.retries)})

        async def webhooks_redeliver(request: Request) -> Response:
            data = await json_or_empty(request)
            return JSONResponse({"requeued": d.redeliver(int(data.get("last", 1)))})

        async def webhooks_settings(request: Request) -> Response:
            data = await json_or_empty(request)
            s = d.settings
            for key in TUNABLE_SETTINGS:
                if key in data:
                    setattr(s, key, type(getattr(s, key))(data[key]))
            return JSONResponse(vars(s))

        async def versioning(request: Request) -> Response:
            if request.method == "POST":
                enabled = (await json_or_empty(request)).get("enabled")
                if not isinstance(enabled, bool):
                    return JSONResponse({"error": "enabled must be true or false"}, status_code=400)
                self.store.versioning.switch(enabled, self.store.records.values())
            return JSONResponse({"enabled": self.store.versioning.enabled})

        async def notes_dump(request: Request) -> Response:
            return JSONResponse({"notes": self.store.notes, "notifications": self.store.notifications})

        return [
            Route("/__sandbox/webhooks", webhooks_state, methods=["GET"]),
            Route("/__sandbox/webhooks/flush", webhooks_flush, methods=["POST"]),
            Route("/__sandbox/webhooks/redeliver", webhooks_redeliver, methods=["POST"]),
            Route("/__sandbox/webhooks/settings", webhooks_settings, methods=["POST"]),
            Route("/__sandbox/versioning", versioning, methods=["GET", "POST"]),
            Route("/__sandbox/notes", notes_dump, methods=["GET"]),
        ]


async def espo_fault_response(fault: Fault, send: Send) -> None:
    status = 503 if fault.kind == "503_nicht_angemeldet" else int(fault.kind)
    headers = {"X-Status-Reason": f"Sandbox fault {status}"}
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    await send_json(send, status, None, headers)
