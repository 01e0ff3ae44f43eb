from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import httpx
import pytest
import respx
from pydantic import SecretStr

from services.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
    ValidationError,
    VersionConflictError,
)
from services.espocrm.client import EspoCrmClient, hmac_authorization
from services.espocrm.datetime import (
    format_espo_date,
    format_espo_datetime,
    parse_espo_date,
    parse_espo_datetime,
)
from services.http import ConnectFailedError, RetryPolicy
from tests.support.fakes import RecordedSleeps
from tests.support.retry import RETRY_SETTINGS, default_retry
from tests.support.vectors import ESPO_HMAC_HEADER, ESPO_HMAC_REQUEST

BASE = "http://crm.test/api/v1"
KEY = "espo-api-key-0000000000000000001"


async def _nosleep(_: float) -> None:
    return None


def fast_retry(**kw: object) -> RetryPolicy:
    return default_retry(sleep=_nosleep, **kw)


def espo_settings(
    *, base_url: str = BASE, api_key: str = KEY, api_secret: str | None = None, timeout: float = 5.0
) -> SimpleNamespace:
    """What `EspoCrmClient` reads of the settings (`EspoCrmSettings`)."""
    return SimpleNamespace(
        ESPOCRM_API_BASE_URL=base_url,
        ESPOCRM_API_KEY=SecretStr(api_key),
        ESPOCRM_API_SECRET=SecretStr(api_secret) if api_secret is not None else None,
        HTTP_TIMEOUT_SECONDS=timeout,
        **RETRY_SETTINGS,
    )


@pytest.fixture
async def client() -> AsyncIterator[EspoCrmClient]:
    c = EspoCrmClient(espo_settings(), retry=fast_retry())
    yield c
    await c.aclose()


def search_params(request: httpx.Request) -> dict:
    return json.loads(request.url.params["searchParams"])


# ---------------------------------------------------------------- CRUD


@respx.mock
async def test_get_sends_api_key(client: EspoCrmClient) -> None:
    route = respx.get(f"{BASE}/CBeteiligte/abc123").respond(200, json={"id": "abc123", "name": "X"})
    assert await client.get("CBeteiligte", "abc123") == {"id": "abc123", "name": "X"}
    assert route.calls.last.request.headers["X-Api-Key"] == KEY


@respx.mock
async def test_list_sends_search_params(client: EspoCrmClient) -> None:
    route = respx.get(f"{BASE}/CBeteiligte").respond(200, json={"total": 1, "list": [{"id": "a"}]})
    where = [{"type": "after", "attribute": "modifiedAt", "value": "2026-07-01 10:00:00"}]
    total, rows = await client.list(
        "CBeteiligte", where=where, select=["id", "name"], order_by="modifiedAt", offset=5, max_size=50
    )
    assert (total, rows) == (1, [{"id": "a"}])
    sp = search_params(route.calls.last.request)
    assert sp == {
        "where": where,
        "select": "id,name",
        "orderBy": "modifiedAt",
        "order": "asc",
        "offset": 5,
        "maxSize": 50,
    }
    assert "X-No-Total" not in route.calls.last.request.headers


async def test_list_refuses_page_above_200(client: EspoCrmClient) -> None:
    with pytest.raises(ValueError):
        await client.list("CBeteiligte", max_size=201)


@respx.mock
async def test_iterate_pages_of_200_until_short_page(client: EspoCrmClient) -> None:
    pages = [
        [{"id": f"a{i}"} for i in range(200)],
        [{"id": f"b{i}"} for i in range(200)],
        [{"id": f"c{i}"} for i in range(3)],
    ]

    def respond(request: httpx.Request) -> httpx.Response:
        sp = search_params(request)
        assert request.headers["X-No-Total"] == "true"
        assert sp["maxSize"] == 200 and sp["orderBy"] == "modifiedAt"
        return httpx.Response(200, json={"total": -1, "list": pages[sp["offset"] // 200]})

    route = respx.get(f"{BASE}/CBeteiligte").mock(side_effect=respond)
    ids = [r["id"] async for r in client.iterate("CBeteiligte", order_by="modifiedAt")]
    assert len(ids) == 403 and ids[0] == "a0" and ids[-1] == "c2"
    assert [search_params(c.request)["offset"] for c in route.calls] == [0, 200, 400]


@respx.mock
async def test_iterate_stops_on_total_minus_two(client: EspoCrmClient) -> None:
    route = respx.get(f"{BASE}/CBeteiligte").respond(
        200, json={"total": -2, "list": [{"id": str(i)} for i in range(200)]}
    )
    assert len([r async for r in client.iterate("CBeteiligte")]) == 200
    assert route.call_count == 1


@respx.mock
async def test_list_ids_where(client: EspoCrmClient) -> None:
    route = respx.get(f"{BASE}/CBeteiligte").respond(200, json={"total": -2, "list": [{"id": "x"}]})
    assert await client.list_ids_where("CBeteiligte", [{"type": "isNull", "attribute": "betnr"}]) == ["x"]
    assert search_params(route.calls.last.request)["select"] == "id"


@respx.mock
async def test_create_with_and_without_skip_duplicate_check(client: EspoCrmClient) -> None:
    route = respx.post(f"{BASE}/CBeteiligte").respond(200, json={"id": "new1"})
    assert await client.create("CBeteiligte", {"name": "Müller"}) == {"id": "new1"}
    assert "X-Skip-Duplicate-Check" not in route.calls.last.request.headers
    assert json.loads(route.calls.last.request.content) == {"name": "Müller"}
    await client.create("CBeteiligte", {"name": "Y"}, skip_duplicate_check=True)
    assert route.calls.last.request.headers["X-Skip-Duplicate-Check"] == "true"


@respx.mock
async def test_update_and_version_number(client: EspoCrmClient) -> None:
    route = respx.put(f"{BASE}/CBeteiligte/abc").respond(200, json={"id": "abc", "status": "Aktiv"})
    assert (await client.update("CBeteiligte", "abc", {"status": "Aktiv"}))["status"] == "Aktiv"
    assert "X-Version-Number" not in route.calls.last.request.headers
    await client.update("CBeteiligte", "abc", {"status": "Aktiv"}, version_number=7)
    assert route.calls.last.request.headers["X-Version-Number"] == "7"


@respx.mock
async def test_delete(client: EspoCrmClient) -> None:
    route = respx.delete(f"{BASE}/CBeteiligte/abc").respond(
        200, content=b"true", headers={"Content-Type": "application/json"}
    )
    await client.delete("CBeteiligte", "abc")  # typed -> None
    assert route.call_count == 1


@respx.mock
async def test_ids_are_path_quoted(client: EspoCrmClient) -> None:
    route = respx.get(f"{BASE}/CBeteiligte/a%2Fb").respond(200, json={"id": "a/b"})
    await client.get("CBeteiligte", "a/b")
    assert route.call_count == 1


# ---------------------------------------------------------------- errors


@respx.mock
async def test_400_validation_carries_status_reason(client: EspoCrmClient) -> None:
    reason = "Field validation failure; entityType: CBeteiligte, field: status, type: valid."
    respx.put(f"{BASE}/CBeteiligte/abc").respond(400, headers={"X-Status-Reason": reason})
    with pytest.raises(ValidationError) as info:
        await client.update("CBeteiligte", "abc", {"status": "bogus"})
    assert info.value.reason == reason and info.value.status_code == 400
    assert info.value.record_id == "abc" and not info.value.retryable


@respx.mock
async def test_401_is_auth_error_and_never_retried(client: EspoCrmClient) -> None:
    route = respx.get(f"{BASE}/CBeteiligte/abc").respond(401)
    with pytest.raises(AuthError) as info:
        await client.get("CBeteiligte", "abc")
    assert info.value.status_code == 401
    assert route.call_count == 1


@respx.mock
async def test_403_is_auth_error_with_reason(client: EspoCrmClient) -> None:
    respx.put(f"{BASE}/CBeteiligte/abc").respond(403, headers={"X-Status-Reason": "No edit access."})
    with pytest.raises(AuthError) as info:
        await client.update("CBeteiligte", "abc", {})
    assert info.value.reason == "No edit access."


@respx.mock
async def test_404_not_found(client: EspoCrmClient) -> None:
    route = respx.get(f"{BASE}/CBeteiligte/gone").respond(
        404, headers={"X-Status-Reason": "Record gone not found."}
    )
    with pytest.raises(NotFoundError) as info:
        await client.get("CBeteiligte", "gone")
    assert info.value.record_id == "gone" and route.call_count == 1


@respx.mock
@pytest.mark.parametrize("reason", ["duplicate", "modified"])
async def test_409_conflict_reason(client: EspoCrmClient, reason: str) -> None:
    respx.post(f"{BASE}/CBeteiligte").respond(409, headers={"X-Status-Reason": reason}, json=[])
    with pytest.raises(ConflictError) as info:
        await client.create("CBeteiligte", {"name": "x"})
    assert info.value.reason == reason


@respx.mock
async def test_409_duplicate_is_no_version_conflict(client: EspoCrmClient) -> None:
    respx.post(f"{BASE}/CBeteiligte").respond(
        409, headers={"X-Status-Reason": "duplicate"}, json=[{"id": "d"}]
    )
    with pytest.raises(ConflictError) as info:
        await client.create("CBeteiligte", {"name": "x"})
    assert not isinstance(info.value, VersionConflictError)


@respx.mock
async def test_409_modified_is_a_version_conflict_with_current_values(client: EspoCrmClient) -> None:
    route = respx.put(f"{BASE}/CBeteiligte/abc").respond(
        409,
        headers={"X-Status-Reason": "modified"},
        json={"values": {"name": "Neuer Name", "phoneNumber": "+49 30 1"}, "versionNumber": 8},
    )
    with pytest.raises(VersionConflictError) as info:
        await client.update("CBeteiligte", "abc", {"name": "Alt"}, version_number=7)
    err = info.value
    assert route.calls.last.request.headers["X-Version-Number"] == "7"
    assert route.call_count == 1  # a conflict is not retried
    assert err.current_values == {"name": "Neuer Name", "phoneNumber": "+49 30 1"}
    assert err.version_number == 8 and err.record_id == "abc" and err.status_code == 409
    assert not err.retryable and isinstance(err, ConflictError)
    assert "Neuer Name" not in str(err)  # current values are data, never in the message


@respx.mock
@pytest.mark.parametrize("body", [b"", b"not json", b'{"values": [], "versionNumber": "x"}'])
async def test_409_modified_with_an_odd_body_still_is_a_version_conflict(
    client: EspoCrmClient, body: bytes
) -> None:
    respx.put(f"{BASE}/CBeteiligte/abc").respond(409, headers={"X-Status-Reason": "modified"}, content=body)
    with pytest.raises(VersionConflictError) as info:
        await client.update("CBeteiligte", "abc", {"name": "Alt"}, version_number=7)
    assert info.value.current_values == {} and info.value.version_number is None


@respx.mock
async def test_update_without_version_number_sends_no_header(client: EspoCrmClient) -> None:
    route = respx.put(f"{BASE}/CBeteiligte/abc").respond(200, json={"id": "abc"})
    await client.update("CBeteiligte", "abc", {"name": "x"})
    assert "X-Version-Number" not in route.calls.last.request.headers


@respx.mock
async def test_probe_reads_one_row_without_count(client: EspoCrmClient) -> None:
    route = respx.get(f"{BASE}/CBeteiligte").respond(200, json={"total": -1, "list": [{"id": "a"}]})
    await client.probe("CBeteiligte")
    assert search_params(route.calls.last.request) == {"offset": 0, "maxSize": 1, "select": "id"}
    assert route.calls.last.request.headers["X-No-Total"] == "true"
    route.respond(503)
    with pytest.raises(UnavailableError):
        await client.probe("CBeteiligte")


@respx.mock
async def test_429_retry_after_is_honoured() -> None:
    sleeps = RecordedSleeps()
    route = respx.get(f"{BASE}/CBeteiligte/abc").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(200, json={"id": "abc"}),
        ]
    )
    async with EspoCrmClient(espo_settings(), retry=default_retry(sleep=sleeps)) as c:
        assert (await c.get("CBeteiligte", "abc"))["id"] == "abc"
    assert sleeps == [2.0] and route.call_count == 2


@respx.mock
async def test_429_gives_up_with_rate_limited(client: EspoCrmClient) -> None:
    respx.get(f"{BASE}/CBeteiligte/abc").respond(429, headers={"Retry-After": "1"})
    with pytest.raises(RateLimitedError) as info:
        await client.get("CBeteiligte", "abc")
    assert info.value.retry_after == 1.0 and info.value.retryable


@respx.mock
@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_retried_then_unavailable(client: EspoCrmClient, status: int) -> None:
    route = respx.get(f"{BASE}/CBeteiligte/abc").respond(status)
    with pytest.raises(UnavailableError) as info:
        await client.get("CBeteiligte", "abc")
    assert info.value.status_code == status and info.value.retryable
    assert route.call_count == 4


@respx.mock
async def test_5xx_then_success(client: EspoCrmClient) -> None:
    respx.get(f"{BASE}/CBeteiligte/abc").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json={"id": "abc"})]
    )
    assert (await client.get("CBeteiligte", "abc"))["id"] == "abc"


@respx.mock
async def test_post_is_not_retried_on_5xx(client: EspoCrmClient) -> None:
    route = respx.post(f"{BASE}/CBeteiligte").respond(503)
    with pytest.raises(UnavailableError):
        await client.create("CBeteiligte", {"name": "x"})
    assert route.call_count == 1


@respx.mock
async def test_post_read_timeout_is_not_retried(client: EspoCrmClient) -> None:
    route = respx.post(f"{BASE}/CBeteiligte").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(UnavailableError) as info:
        await client.create("CBeteiligte", {"name": "x"})
    assert not isinstance(info.value, ConnectFailedError)
    assert route.call_count == 1


@respx.mock
async def test_post_connect_error_is_retried(client: EspoCrmClient) -> None:
    route = respx.post(f"{BASE}/CBeteiligte").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json={"id": "n"})]
    )
    assert (await client.create("CBeteiligte", {"name": "x"}))["id"] == "n"
    assert route.call_count == 2


@respx.mock
@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("x"), httpx.ReadTimeout("x"), httpx.RemoteProtocolError("x")]
)
async def test_transport_errors_become_unavailable(client: EspoCrmClient, exc: Exception) -> None:
    route = respx.get(f"{BASE}/CBeteiligte/abc").mock(side_effect=exc)
    with pytest.raises(UnavailableError):
        await client.get("CBeteiligte", "abc")
    # A connection never made is repeated more often: it was provably not carried out.
    policy = default_retry()
    unsent = isinstance(exc, httpx.ConnectError)
    assert route.call_count == (policy.unsent_attempts if unsent else policy.max_attempts)


# ---------------------------------------------------------------- HMAC auth


def test_hmac_authorization_vector() -> None:
    assert hmac_authorization(*ESPO_HMAC_REQUEST) == ESPO_HMAC_HEADER


@respx.mock
async def test_hmac_mode_signs_path_without_query() -> None:
    route = respx.get(f"{BASE}/CBeteiligte").respond(200, json={"total": 0, "list": []})
    settings = espo_settings(
        api_key="api0key0000000000000000000000001", api_secret="sec0key0000000000000000000000001"
    )
    async with EspoCrmClient(settings) as c:
        await c.list("CBeteiligte", max_size=10)
    req = route.calls.last.request
    assert "X-Api-Key" not in req.headers
    assert req.headers["X-Hmac-Authorization"].startswith(
        "YXBpMGtleTAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDE6NDFhMTgy"
    )


def test_client_from_its_settings() -> None:
    c = EspoCrmClient(espo_settings(base_url=BASE + "/", timeout=7.0))
    assert c.base_url == BASE + "/"
    assert c._http.timeout.read == 7.0
    assert KEY not in repr(c)


# ---------------------------------------------------------------- datetime


def test_format_espo_datetime_converts_to_utc() -> None:
    berlin_summer = timezone(timedelta(hours=2))
    assert (
        format_espo_datetime(datetime(2026, 7, 1, 12, 15, 30, 999, tzinfo=berlin_summer))
        == "2026-07-01 10:15:30"
    )
    assert format_espo_datetime(datetime(2026, 1, 1, 0, 0, tzinfo=UTC)) == "2026-01-01 00:00:00"
    with pytest.raises(ValueError):
        format_espo_datetime(datetime(2026, 1, 1))


def test_parse_espo_datetime_strict() -> None:
    assert parse_espo_datetime("2026-07-01 10:15:00") == datetime(2026, 7, 1, 10, 15, tzinfo=UTC)
    assert parse_espo_datetime("2026-07-01 10:15") == datetime(2026, 7, 1, 10, 15, tzinfo=UTC)
    for bad in ["2026-07-01T10:15:00Z", "2026-07-01", "01.07.2026 10:15", "2026-13-01 10:00:00", ""]:
        with pytest.raises(ValueError):
            parse_espo_datetime(bad)


def test_roundtrip_and_dates() -> None:
    dt = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert parse_espo_datetime(format_espo_datetime(dt)) == dt
    assert parse_espo_date("1980-02-29").isoformat() == "1980-02-29"
    assert format_espo_date(parse_espo_date("1980-02-29")) == "1980-02-29"
    with pytest.raises(ValueError):
        parse_espo_date("29.02.1980")


@respx.mock
async def test_select_may_be_a_comma_separated_string(client: EspoCrmClient) -> None:
    route = respx.get(f"{BASE}/CBeteiligte").respond(200, json={"total": -2, "list": []})
    assert [r async for r in client.iterate("CBeteiligte", select="id,modifiedAt")] == []
    assert search_params(route.calls.last.request)["select"] == "id,modifiedAt"
