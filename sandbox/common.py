"""Shared simulator machinery: call log, run-time fault injection and added latency (ASGI middleware)."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter, deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ADMIN_PREFIX = "/__sandbox"
FAULT_KINDS_SPECIAL = {"drop", "timeout", "latency", "lost_answer", "503_nicht_angemeldet"}


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Fault:
    # "500", "503", "429", "503_nicht_angemeldet", "drop", "timeout", "latency", "lost_answer", any "NNN"
    kind: str
    next_n: int | None = 1  # how many matching calls it hits; None = until cleared
    latency_ms: int = 0
    method: str | None = None
    path: str | None = None  # regex searched in the path
    rate: float | None = None  # probability per matching call
    retry_after: int | None = None
    sleep_s: float | None = None  # for "timeout"
    hits: int = 0
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        kind = str(data.get("kind", "latency" if data.get("latency_ms") else "500"))
        if kind not in FAULT_KINDS_SPECIAL and not re.fullmatch(r"[1-5]\d\d", kind):
            raise ValueError(f"unknown fault kind {kind!r}")
        match = data.get("match") or {}
        if isinstance(match, str):
            match = {"path": match}
        next_n = data.get("next_n", None if data.get("rate") is not None else 1)
        return cls(
            kind=kind,
            next_n=None if next_n is None else int(next_n),
            latency_ms=int(data.get("latency_ms", 0)),
            method=(match.get("method") or data.get("method") or None),
            path=(match.get("path") or data.get("path") or None),
            rate=None if data.get("rate") is None else float(data["rate"]),
            retry_after=None if data.get("retry_after") is None else int(data["retry_after"]),
            sleep_s=None if data.get("sleep_s") is None else float(data["sleep_s"]),
            rng=random.Random(data.get("seed", 0)),
        )

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not (self.path and not re.search(self.path, path))

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "next_n": self.next_n,
            "latency_ms": self.latency_ms,
            "match": {"method": self.method, "path": self.path},
            "rate": self.rate,
            "retry_after": self.retry_after,
            "hits": self.hits,
        }


class Harness:
    """Per-simulator call log, counters, faults and global latency."""

    def __init__(self, name: str, latency_ms: int = 0, timeout_fault_seconds: float = 30.0) -> None:
        self.name = name
        self.latency_ms = latency_ms
        self.timeout_fault_seconds = timeout_fault_seconds
        self.calls: deque[dict[str, Any]] = deque(maxlen=100_000)
        self.seq = 0
        self.counters: Counter[str] = Counter()
        self.faults: list[Fault] = []

    def take_fault(self, method: str, path: str) -> Fault | None:
        for fault in list(self.faults):
            if not fault.matches(method, path):
                continue
            if fault.rate is not None and fault.rng.random() >= fault.rate:
                continue
            fault.hits += 1
            if fault.next_n is not None:
                fault.next_n -= 1
                if fault.next_n <= 0:
                    self.faults.remove(fault)
            return fault
        return None

    def record(self, entry: dict[str, Any]) -> None:
        self.seq += 1
        entry["seq"] = self.seq
        self.calls.append(entry)
        self.counters[f"{entry['method']} {entry['route']}"] += 1
        self.counters[f"status {entry['status']}"] += 1
        self.counters["total"] += 1

    def calls_since(self, since: int) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["seq"] > since]

    def clear_calls(self) -> None:
        self.calls.clear()
        self.counters.clear()


def route_of(path: str) -> str:
    """Path with ids replaced, for counters: /api/v1/CBeteiligte/{id}."""
    parts = path.split("/")
    out = []
    for part in parts:
        if re.fullmatch(r"[0-9a-f]{17}|\d+", part):
            out.append("{id}")
        else:
            out.append(part)
    return "/".join(out)


FaultResponder = Callable[[Fault, Send], Awaitable[None]]


class HarnessMiddleware:
    """Records every API call and applies latency and injected faults (not to /__sandbox)."""

    def __init__(self, app: ASGIApp, harness: Harness, fault_response: FaultResponder) -> None:
        self.app = app
        self.harness = harness
        self.fault_response = fault_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        harness = self.harness
        method, path = scope["method"], scope["path"]
        info: dict[str, Any] = {"user": None}
        scope["sandbox"] = info
        status_box = {"status": 0}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
            await send(message)

        entry = {
            "method": method,
            "path": path,
            "route": route_of(path),
            "query": scope.get("query_string", b"").decode("latin-1"),
            "timestamp": utc_now_iso(),
            "fault": None,
        }
        try:
            if harness.latency_ms > 0:
                await asyncio.sleep(harness.latency_ms / 1000)
            fault = harness.take_fault(method, path)
            if fault is not None:
                entry["fault"] = fault.kind
                if fault.kind in ("timeout", "latency"):
                    # Read the body now: a client that gives up while we wait must not keep
                    # the request from being processed afterwards ("the write may still have
                    # happened"), as a real server that already received it would.
                    receive = await buffered(receive)
                if fault.latency_ms:
                    await asyncio.sleep(fault.latency_ms / 1000)
                if fault.kind == "drop":
                    await drop_connection(send)
                    return
                if fault.kind == "lost_answer":
                    # Carried out (a POST creates, a PUT writes), but its answer never arrives: a
                    # proxy timeout or a dropped connection after the server did the work.
                    await self.app(scope, receive, unsent(status_box))
                    await drop_connection(send)
                    return
                if fault.kind == "timeout":
                    await asyncio.sleep(fault.sleep_s or harness.timeout_fault_seconds)
                elif fault.kind != "latency":
                    await self.fault_response(fault, send_wrapper)
                    return
            await self.app(scope, receive, send_wrapper)
        finally:
            entry["status"] = status_box["status"]
            entry["user"] = info.get("user")
            harness.record(entry)


async def buffered(receive: Receive) -> Receive:
    """Read the whole request body now; replay it to the app later, then the live channel."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body"):
            break

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return replay


def unsent(status_box: dict[str, int]) -> Send:
    """A `send` that keeps the answer's status for the call log and sends nothing."""

    async def swallow(message: Message) -> None:
        if message["type"] == "http.response.start":
            status_box["status"] = message["status"]

    return swallow


async def drop_connection(send: Send) -> None:
    """Close the TCP connection without any response (uvicorn: the cycle's transport)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None:
        transport.close()
        await asyncio.sleep(0.01)
        return
    raise ConnectionAbortedError("sandbox fault: connection dropped")


async def send_json(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    raw = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
    hdrs = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(raw)).encode()),
    ]
    for k, v in (headers or {}).items():
        hdrs.append((k.lower().encode(), v.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})
