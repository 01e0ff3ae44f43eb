"""The client base (services/http/base.py), the observation hook and the EspoCRM auth flows."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, ClassVar

import httpx
import pytest

from services import errors as e
from services.espocrm.auth import ApiKeyAuth, HmacAuth
from services.http import set_observer
from services.http.base import ApiClient, status_error
from tests.support.fakes import RecordedSleeps
from tests.support.retry import RETRY_SETTINGS, default_retry

BASE = "http://api.test/api/v1/"


async def _nosleep(_: float) -> None:
    return None


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def observe(self, system: str, method: str, status_class: str, seconds: float) -> None:
        assert seconds >= 0
        self.calls.append((system, method, status_class))


class Broken:
    def observe(self, system: str, method: str, status_class: str, seconds: float) -> None:
        raise RuntimeError("metrics backend down")


class Demo(ApiClient):
    system: ClassVar[str] = "demo"

    def __init__(self, handler: Any, **kw: Any) -> None:
        super().__init__(
            BASE,
            timeout=5,
            settings=SimpleNamespace(**RETRY_SETTINGS),
            transport=httpx.MockTransport(handler),
            retry=default_retry(sleep=_nosleep, jitter=False),
            **kw,
        )
        self.auth = ApiKeyAuth("k-1")

    def error_reason(self, resp: httpx.Response) -> str | None:
        return resp.headers.get("X-Why")


def answer(*responses: httpx.Response | Exception) -> tuple[Any, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    set_observer(rec)
    yield rec
    set_observer(None)


# ---------------------------------------------------------------- status table


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, e.ValidationError),
        (422, e.ValidationError),
        (401, e.AuthError),
        (403, e.AuthError),
        (404, e.NotFoundError),
        (409, e.ConflictError),
        (429, e.RateLimitedError),
        (500, e.UnavailableError),
        (503, e.UnavailableError),
        (418, e.FatalError),
    ],
)
def test_status_table(status: int, cls: type[e.ApiError]) -> None:
    err = status_error(httpx.Response(status), what="GET X/{id}", system="demo", record_id="7", reason="why")
    assert type(err) is cls
    assert (err.status_code, err.record_id, err.reason, err.system) == (status, "7", "why", "demo")
    assert str(err).startswith("demo: GET X/{id}")


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_a_declared_field_of_the_transient_error(status: int) -> None:
    err = status_error(httpx.Response(status, headers={"Retry-After": "12"}), what="GET X", system="demo")
    assert isinstance(err, e.UnavailableError | e.RateLimitedError)
    assert err.retry_after == 12.0


def test_transient_error_without_retry_after() -> None:
    assert e.UnavailableError("down", system="x").retry_after is None


# ---------------------------------------------------------------- request path


async def test_request_sends_json_decodes_and_uses_the_hooks() -> None:
    handler, seen = answer(httpx.Response(200, json={"ok": True}))
    async with Demo(handler) as c:
        assert await c.request("POST", "Thing", template="Thing", body={"ä": 1}) == {"ok": True}
    req = seen[0]
    assert req.url == BASE + "Thing"
    assert req.headers["Content-Type"] == "application/json" and req.headers["Accept"] == "application/json"
    assert req.content == '{"ä": 1}'.encode()
    assert req.headers["X-Api-Key"] == "k-1"


async def test_error_reason_hook_and_retry_after_drive_the_retry() -> None:
    handler, seen = answer(
        httpx.Response(503, headers={"Retry-After": "2", "X-Why": "maintenance"}),
        httpx.Response(200, json=[]),
    )
    sleeps = RecordedSleeps()
    async with Demo(handler) as c:
        c._retry = default_retry(sleep=sleeps)
        assert await c.request("GET", "Thing", template="Thing") == []
    assert sleeps == [2.0] and len(seen) == 2

    handler, _ = answer(httpx.Response(400, headers={"X-Why": "field: name"}))
    async with Demo(handler) as c:
        with pytest.raises(e.ValidationError) as info:
            await c.request("GET", "Thing", template="Thing")
    assert info.value.reason == "field: name"


async def test_observer_sees_each_attempt_and_transport_errors(recorder: Recorder) -> None:
    handler, _ = answer(httpx.Response(500), httpx.ConnectError("refused"), httpx.Response(204))
    async with Demo(handler) as c:
        assert await c.request("GET", "Thing", template="Thing") is None
    assert recorder.calls == [("demo", "GET", "5xx"), ("demo", "GET", "error"), ("demo", "GET", "2xx")]


async def test_client_observer_overrides_the_process_default(recorder: Recorder) -> None:
    own = Recorder()
    handler, _ = answer(httpx.Response(404))
    async with Demo(handler, observer=own) as c:
        with pytest.raises(e.NotFoundError):
            await c.request("GET", "Thing/1", template="Thing/{id}")
    assert own.calls == [("demo", "GET", "4xx")] and recorder.calls == []


async def test_a_failing_observer_never_fails_the_request() -> None:
    handler, _ = answer(httpx.Response(200, json=1))
    async with Demo(handler, observer=Broken()) as c:
        assert await c.request("GET", "Thing", template="Thing") == 1


async def test_no_observer_installed_is_a_no_op() -> None:
    handler, _ = answer(httpx.Response(200, json=1))
    async with Demo(handler) as c:
        assert await c.request("GET", "Thing", template="Thing") == 1


# ---------------------------------------------------------------- EspoCRM auth flows


def test_hmac_flow_signs_the_path_below_the_api_root_without_query() -> None:
    auth = HmacAuth(
        "api0key0000000000000000000000001",
        "sec0key0000000000000000000000001",
        base_url="http://crm.test/api/v1/",
    )
    request = httpx.Request("GET", "http://crm.test/api/v1/CBeteiligte?maxSize=10")
    flow = auth.sync_auth_flow(request)
    signed = next(flow)
    # The vector of shared/docs/espocrm-api.md §2.1.
    assert signed.headers["X-Hmac-Authorization"] == (
        "YXBpMGtleTAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDE6NDFhMTgyNTRjOWRjNGQwNmRlMWZhODVmNzU1ZWQzMmU0Y2RmN2Iw"
        "OGMwYWYwMDk0ZGYxMDI2ODg0NjEwZDMxNw=="
    )
    assert "X-Api-Key" not in signed.headers
    assert (
        auth.signed_path(httpx.Request("PUT", "http://crm.test/api/v1/CBeteiligte/a%2Fb"))
        == "CBeteiligte/a%2Fb"
    )


def test_auth_flows_never_show_their_keys() -> None:
    assert "k-1" not in repr(ApiKeyAuth("k-1"))
    assert "s-1" not in repr(HmacAuth("k-1", "s-1", base_url=BASE)) and "k-1" not in repr(
        HmacAuth("k-1", "s-1", base_url=BASE)
    )


def test_https_verifies_with_the_ca_bundle_and_plain_http_gets_a_context_that_trusts_nothing() -> None:
    import ssl

    from services.http.transport import _ssl_context

    https = _ssl_context("https://advoware.example/api/")
    assert https.verify_mode == ssl.CERT_REQUIRED and https.check_hostname
    assert https.cert_store_stats()["x509_ca"] > 0  # the CA bundle loaded
    assert _ssl_context("https://espocrm.example/api/v1/") is https  # loaded once per process
    plain = _ssl_context("http://127.0.0.1:8080/api/v1/")
    # Never used for plain http; were it used, it would refuse every certificate (no CA at all).
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
    assert plain.cert_store_stats()["x509_ca"] == 0
