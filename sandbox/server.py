"""Run both simulators: in this process (`python -m sandbox`) or in a background thread (tests)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn

from sandbox.advoware import AdvoSimulator
from sandbox.config import SandboxConfig
from sandbox.espocrm import EspoSimulator


class _Server(uvicorn.Server):
    """uvicorn.Server without its own signal capture: the Sandbox stops both servers together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _server(app: Any, host: str, port: int, log_level: str, lifespan: Literal["on", "off"]) -> _Server:
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, lifespan=lifespan, access_log=False
    )
    return _Server(config)


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.espo = EspoSimulator(config)
        self.advo = AdvoSimulator(config)
        self._servers: list[_Server] = []

    def ready_line(self) -> str:
        c = self.config
        return (
            f"sandbox ready: espocrm={c.espo_url}/api/v1 advoware={c.advo_url}/ "
            f"webhooks->{c.webhook_base} records espo={len(self.espo.store.records)} "
            f"advo={len(self.advo.store.records)}"
        )

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        c = self.config
        # EspoCRM's lifespan starts and stops its webhook sender; Advoware has none.
        self._servers = [
            _server(self.espo.app, c.host, c.espo_port, c.log_level, lifespan="on"),
            _server(self.advo.app, c.host, c.advo_port, c.log_level, lifespan="off"),
        ]
        tasks = [asyncio.ensure_future(s.serve()) for s in self._servers]

        async def watch() -> None:
            while not all(s.started for s in self._servers):
                if any(t.done() for t in tasks):
                    return
                await asyncio.sleep(0.02)
            if on_ready is not None:
                on_ready()

        watcher = asyncio.ensure_future(watch())
        try:
            await asyncio.gather(*tasks)
        finally:
            watcher.cancel()
        for t in tasks:
            if t.exception() is None and not all(s.started for s in self._servers):
                raise RuntimeError("sandbox servers failed to start (port in use?)")

    def request_stop(self) -> None:
        for s in self._servers:
            s.should_exit = True


def run_forever(config: SandboxConfig) -> None:
    """`python -m sandbox`: serve until SIGTERM/SIGINT, printing one ready line."""
    sandbox = Sandbox(config)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, sandbox.request_stop)
        await sandbox.serve(on_ready=lambda: print(sandbox.ready_line(), flush=True))

    asyncio.run(main())


@dataclass
class SandboxHandle:
    sandbox: Sandbox
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop

    @property
    def espo(self) -> EspoSimulator:
        return self.sandbox.espo

    @property
    def advo(self) -> AdvoSimulator:
        return self.sandbox.advo

    @property
    def config(self) -> SandboxConfig:
        return self.sandbox.config

    def stop(self, timeout: float = 10.0) -> None:
        self.loop.call_soon_threadsafe(self.sandbox.request_stop)
        self.thread.join(timeout)

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_in_thread(config: SandboxConfig, timeout: float = 15.0) -> SandboxHandle:
    """Start both servers in a daemon thread; returns once both listen. Call `.stop()` (or use `with`)."""
    sandbox = Sandbox(config)
    ready = threading.Event()
    errors: list[BaseException] = []
    loop = asyncio.new_event_loop()

    def target() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(sandbox.serve(on_ready=ready.set))
        except BaseException as exc:
            errors.append(exc)
        finally:
            ready.set()
            loop.close()

    thread = threading.Thread(target=target, name="sandbox", daemon=True)
    thread.start()
    if not ready.wait(timeout) or errors or not thread.is_alive():
        sandbox.request_stop()
        raise RuntimeError(f"sandbox did not start: {errors[0] if errors else 'timeout'}")
    return SandboxHandle(sandbox=sandbox, thread=thread, loop=loop)
