"""Headless Chromium (Debian package `chromium`) driven over the DevTools protocol.

The protocol runs over a pipe (`--remote-debugging-pipe`: commands on fd 3, replies and events
on fd 4, NUL-terminated JSON), so no WebSocket client library and no debugging port are needed.
One `Browser` is one Chromium process with one page; `page_requests` records every request the
page makes (including WebSockets) so a test can check where a page loads from.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("chromium not installed: run `make install` (apt-get install chromium)")


def _high_fd(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class CdpError(RuntimeError):
    pass


@dataclass
class Browser:
    """A headless Chromium with one page, `width` x `height` CSS pixels."""

    width: int = 1600
    height: int = 1000
    login: tuple[str, str] | None = None  # answered to HTTP auth challenges, like a person would
    page_requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    _proc: subprocess.Popen[bytes] | None = None
    _to: Any = None
    _from: Any = None
    _buffer: bytes = b""
    _next_id: int = 0
    _session: str = ""
    _profile: str = ""

    def __enter__(self) -> Browser:
        self._profile = tempfile.mkdtemp(prefix="vmh-chromium-")
        to_r, to_w = os.pipe()  # commands to the browser: its fd 3
        from_r, from_w = os.pipe()  # replies and events from the browser: its fd 4
        # The child's ends above fd 9, so moving them onto 3 and 4 never clobbers one of them.
        to_r, from_w = (_high_fd(fd) for fd in (to_r, from_w))
        # bash moves the two pipe ends to fds 3 and 4 (where Chromium expects them) and execs it.
        move_fds = f'exec "$@" 3<&{to_r} 4>&{from_w} {to_r}<&- {from_w}>&-'
        args = [
            chromium_binary(),
            "--headless=new",
            "--remote-debugging-pipe",
            "--no-sandbox",  # tests may run as root (CI containers)
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-features=Translate,MediaRouter,OptimizationHints",
            "--hide-scrollbars",
            f"--user-data-dir={self._profile}",
            f"--window-size={self.width},{self.height}",
            "about:blank",
        ]
        self._proc = subprocess.Popen(
            ["bash", "-c", move_fds, "bash", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(to_r, from_w),
            start_new_session=True,
        )
        os.close(to_r)
        os.close(from_w)
        self._to = os.fdopen(to_w, "wb", buffering=0)
        self._from = os.fdopen(from_r, "rb", buffering=0)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Network.enable")
        if self.login:
            self.send("Fetch.enable", {"handleAuthRequests": True, "patterns": [{"urlPattern": "*"}]})
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._to is not None:
                self._to.close()
            if self._proc is not None:
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(self._proc.pid, 9)
                    self._proc.wait(timeout=5)
        finally:
            if self._from is not None:
                self._from.close()
            shutil.rmtree(self._profile, ignore_errors=True)

    # ------------------------------------------------------------------ protocol
    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> Any:
        """A browser-level command (no session)."""
        return self._command(method, params, None, timeout)

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> Any:
        """A command to the page."""
        return self._command(method, params, self._session, timeout)

    def _command(
        self, method: str, params: dict[str, Any] | None, session: str | None, timeout: float
    ) -> Any:
        self._next_id += 1
        my_id = self._next_id
        msg: dict[str, Any] = {"id": my_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._to.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == my_id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._on_event(reply)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no reply from chromium")
            chunk = self._from.read(65536)
            if not chunk:
                raise CdpError("chromium exited")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def _on_event(self, event: dict[str, Any]) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            self.page_requests.append(params["request"]["url"])
        elif method == "Network.webSocketCreated":
            self.page_requests.append(params["url"])
        elif method == "Runtime.consoleAPICalled":
            self.console.append(
                " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            )
        elif method == "Fetch.authRequired" and self.login:
            user, password = self.login
            self._reply_later(
                "Fetch.continueWithAuth",
                {
                    "requestId": params["requestId"],
                    "authChallengeResponse": {
                        "response": "ProvideCredentials",
                        "username": user,
                        "password": password,
                    },
                },
            )
        elif method == "Fetch.requestPaused":
            self._reply_later("Fetch.continueRequest", {"requestId": params["requestId"]})

    def _reply_later(self, method: str, params: dict[str, Any]) -> None:
        # Sent without waiting for its reply (we may be inside another command's wait).
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params, "sessionId": self._session}
        self._to.write(json.dumps(msg).encode() + b"\0")

    # ------------------------------------------------------------------ page helpers
    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise CdpError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60, interval: float = 0.25) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = self.evaluate(expression)
            if last:
                return last
            self.pump(interval)
        raise TimeoutError(f"page never satisfied {expression!r}; last={last!r}")

    def pump(self, seconds: float) -> None:
        """Let the page run (and handle its events) for `seconds`."""
        self.send(
            "Runtime.evaluate",
            {"expression": f"new Promise(r => setTimeout(r, {int(seconds * 1000)}))", "awaitPromise": True},
        )

    def click(self, selector: str, timeout: float = 30) -> None:
        """A real mouse click (press and release) on the centre of the first `selector` match."""
        find = f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null; const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2] }})()"
        x, y = self.wait_for(find, timeout=timeout)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}
            )

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
