"""The /__sandbox admin endpoints both simulators share (no auth; the servers bind 127.0.0.1 only)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.common import Fault, Harness


async def json_or_empty(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = json.loads(raw)
    return data if isinstance(data, dict) else {}


def admin_routes(
    harness: Harness,
    reset: Callable[[dict[str, Any]], None],
    records: Callable[[], dict[str, Any]],
    extra: list[Route],
) -> list[Route]:
    """The /__sandbox endpoints both simulators share."""

    async def calls(request: Request) -> Response:
        if request.method == "DELETE":
            harness.clear_calls()
            return JSONResponse({"cleared": True})
        since = int(request.query_params.get("since", "0"))
        return JSONResponse(
            {"seq": harness.seq, "calls": harness.calls_since(since), "counters": dict(harness.counters)}
        )

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            harness.faults.clear()
            return JSONResponse({"faults": []})
        if request.method == "POST":
            data = await json_or_empty(request)
            raw_specs = data.get("faults")
            specs: list[Any] = raw_specs if isinstance(raw_specs, list) else [data]
            try:
                for spec in specs:
                    harness.faults.append(Fault.from_json(spec))
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"faults": [f.describe() for f in harness.faults]})

    async def latency(request: Request) -> Response:
        if request.method == "POST":
            data = await json_or_empty(request)
            harness.latency_ms = int(data.get("latency_ms", 0))
        return JSONResponse({"latency_ms": harness.latency_ms})

    async def reset_ep(request: Request) -> Response:
        data = await json_or_empty(request)
        reset(data)
        harness.clear_calls()
        harness.faults.clear()
        return JSONResponse({"reset": True})

    async def records_ep(request: Request) -> Response:
        return JSONResponse(records())

    return [
        Route("/__sandbox/calls", calls, methods=["GET", "DELETE"]),
        Route("/__sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/__sandbox/latency", latency, methods=["GET", "POST"]),
        Route("/__sandbox/reset", reset_ep, methods=["POST"]),
        Route("/__sandbox/records", records_ep, methods=["GET"]),
        *extra,
    ]
