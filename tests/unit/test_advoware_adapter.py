"""The defensive Advoware adapter (issue 16): stubs of a server that differs from the contract.

Each stub is one way a real connector can drift from shared/docs/advoware-api.md Part 2; the
adapter must neither loop, nor truncate, nor take a misrouted URL's 404 for a deletion.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import fakeredis
import httpx
import pytest
import respx

from services.advoware.client import AdvowareClient
from services.advoware.concurrency import LocalSemaphore
from services.advoware.paging import PageGuard
from services.errors import ContractError, NotFoundError, NotFoundUnconfirmedError, TransientError
from tests.support.retry import default_retry
from tests.unit.test_advoware_client import TOKEN_URL, URL, settings

pytestmark = pytest.mark.respx(assert_all_called=False)


async def _nosleep(_: float) -> None:
    return None


@pytest.fixture
async def client() -> AsyncIterator[AdvowareClient]:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    c = AdvowareClient(settings(), redis, retry=default_retry(sleep=_nosleep), limiter=LocalSemaphore(4))
    yield c
    await c.aclose()
    await redis.aclose()


@pytest.fixture(autouse=True)
def _token(respx_mock: respx.MockRouter) -> respx.Route:
    return respx_mock.post(TOKEN_URL).respond(200, json={"access_token": "tok", "expires_in": 3600})


def listing(
    total: int, *, cap: int | None = None, ignore_skip: bool = False
) -> Callable[..., httpx.Response]:
    """A stub listing of betNr 1..total that may cap pages or ignore `skip`."""

    def page(request: httpx.Request) -> httpx.Response:
        skip = 0 if ignore_skip else int(request.url.params["skip"])
        take = int(request.url.params["take"])
        if cap is not None:
            take = min(take, cap)
        return httpx.Response(200, json=[{"betNr": b} for b in range(skip + 1, min(skip + take, total) + 1)])

    return page


async def betnrs(client: AdvowareClient, **kw: object) -> list[int]:
    return [row["betNr"] async for row in client.iter_beteiligte(**kw)]  # type: ignore[arg-type]


# ---------------------------------------------------------------- paging


async def test_server_capping_pages_at_50_still_yields_everything(
    client: AdvowareClient, respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    route = respx_mock.get(URL).mock(side_effect=listing(230, cap=50))
    with caplog.at_level(logging.WARNING, logger="services.advoware.paging"):
        assert await betnrs(client) == list(range(1, 231))
    skips = [int(c.request.url.params["skip"]) for c in route.calls]
    assert skips == [0, 50, 100, 150, 200, 230]  # read on past each short page, to the empty one
    assert sum("capped at 50" in r.getMessage() for r in caplog.records) == 1


async def test_server_ignoring_skip_fails_loudly_instead_of_looping(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(URL).mock(side_effect=listing(1000, ignore_skip=True))
    rows: list[int] = []
    with pytest.raises(ContractError) as info:
        async for row in client.iter_beteiligte():
            rows.append(row["betNr"])
    assert route.call_count == 2  # the first page, then its repetition: stop
    assert rows == list(range(1, 101))
    assert "ignore 'skip'" in str(info.value) and info.value.retryable


async def test_server_ignoring_skip_with_a_short_first_page_fails_too(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    # 30 records and a server that ignores skip: page 2 repeats page 1. Whether that was all is
    # unknowable (the server might cap at 30 too): never report it as complete.
    respx_mock.get(URL).mock(side_effect=listing(30, ignore_skip=True))
    with pytest.raises(ContractError):
        await betnrs(client)


async def test_shifted_pages_are_deduplicated_not_an_error(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(URL).mock(
        side_effect=[
            httpx.Response(200, json=[{"betNr": 1}, {"betNr": 2}]),
            httpx.Response(200, json=[{"betNr": 2}, {"betNr": 3}]),
            httpx.Response(200, json=[]),
        ]
    )
    assert await betnrs(client, take=2) == [1, 2, 3]


@pytest.mark.parametrize(
    "body",
    [{"items": []}, [{"name": "ohne betNr"}], ["nicht ein Objekt"], [{"betNr": "x"}], [{"betNr": True}]],
)
async def test_answers_outside_the_contract_raise_contract_error(
    client: AdvowareClient, respx_mock: respx.MockRouter, body: Any
) -> None:
    respx_mock.get(URL).respond(200, json=body)
    with pytest.raises(ContractError):
        await betnrs(client)


async def test_listing_resumes_at_start(client: AdvowareClient, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(URL).mock(side_effect=listing(250))
    assert await betnrs(client, start=200) == list(range(201, 251))
    assert [c.request.url.params["skip"] for c in route.calls] == ["200", "250"]
    with pytest.raises(ValueError):
        await betnrs(client, start=-1)


def test_page_guard_reads_on_past_a_page_of_records_shifted_in_by_edits() -> None:
    """The sweep's changed-since listing is sorted by betNr; parties edited while it is read join
    it before the page being read and push read ones into it (a sweep failed with 500 that way)."""
    guard = PageGuard(take=3)
    assert [r["betNr"] for r in guard.accept([{"betNr": b} for b in (1, 5, 9)])] == [1, 5, 9]
    assert [r["betNr"] for r in guard.accept([{"betNr": b} for b in (12, 15, 18)])] == [12, 15, 18]
    # Parties 2, 3, 4, 6 and 7 were edited meanwhile: the page at skip=6 holds 9, 12, 15.
    assert guard.accept([{"betNr": b} for b in (5, 9, 12)]) == [] and not guard.done
    assert [r["betNr"] for r in guard.accept([{"betNr": b} for b in (15, 18, 21)])] == [21]
    with pytest.raises(ContractError):  # the previous page once more: not a shift
        guard.accept([{"betNr": b} for b in (15, 18, 21)])


def test_page_guard_gives_up_after_pages_of_nothing_new() -> None:
    guard = PageGuard(take=2)
    guard.accept([{"betNr": 1}, {"betNr": 2}])
    guard.accept([{"betNr": 3}, {"betNr": 4}])
    for page in ([2, 3], [1, 3]):
        assert guard.accept([{"betNr": b} for b in page]) == []
    with pytest.raises(ContractError):
        guard.accept([{"betNr": 2}, {"betNr": 4}])


def test_page_guard_counts_pages_and_ends_only_on_an_empty_page() -> None:
    guard = PageGuard(take=3)
    assert [r["betNr"] for r in guard.accept([{"betNr": 1}, {"betNr": 2}])] == [1, 2]
    assert not guard.done and guard.skip == 2
    assert guard.accept([]) == [] and guard.done and guard.pages == 2


# ---------------------------------------------------------------- 404 confirmation


async def test_confirmed_404_needs_a_second_read_and_a_listing_that_answers(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    record = respx_mock.get(f"{URL}/7").respond(404, json={"Message": "Beteiligter nicht gefunden"})
    probe = respx_mock.get(URL).respond(200, json=[{"betNr": 1}])
    with pytest.raises(NotFoundError) as info:
        await client.get_beteiligter(7)
    assert type(info.value) is NotFoundError and not info.value.retryable
    assert record.call_count == 2
    assert probe.call_count == 1 and probe.calls.last.request.url.params["take"] == "1"


async def test_404_everywhere_is_not_confirmed_and_transient(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    """A misrouted connector URL: every path answers 404. No record may count as deleted."""
    respx_mock.get(url__regex=r".*/api/v1/advonet/Beteiligte.*").respond(404)
    with pytest.raises(NotFoundUnconfirmedError) as info:
        await client.get_beteiligter(7)
    assert isinstance(info.value, TransientError) and not isinstance(info.value, NotFoundError)
    assert "404 not confirmed" in str(info.value) and info.value.record_id == "7"


async def test_404_with_a_listing_that_is_down_is_not_confirmed(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{URL}/7").respond(404)
    respx_mock.get(URL).respond(503)
    with pytest.raises(NotFoundUnconfirmedError):
        await client.get_beteiligter(7)


async def test_a_404_the_second_read_contradicts_returns_the_record(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{URL}/7").mock(side_effect=[httpx.Response(404), httpx.Response(200, json={"betNr": 7})])
    probe = respx_mock.get(URL).respond(200, json=[])
    assert await client.get_beteiligter(7) == {"betNr": 7}
    assert probe.call_count == 0


async def test_put_404_for_a_readable_record_is_not_confirmed(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.put(f"{URL}/7").respond(404)
    respx_mock.get(f"{URL}/7").respond(200, json={"betNr": 7})
    with pytest.raises(NotFoundUnconfirmedError):
        await client.update_beteiligter(7, {"name": "x"})


async def test_put_404_confirmed_by_read_and_listing(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    put = respx_mock.put(f"{URL}/7").respond(404)
    respx_mock.get(f"{URL}/7").respond(404)
    respx_mock.get(URL).respond(200, json=[{"betNr": 1}])
    with pytest.raises(NotFoundError) as info:
        await client.update_beteiligter(7, {"name": "x"})
    assert type(info.value) is NotFoundError and put.call_count == 1


async def test_probe(client: AdvowareClient, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(URL).respond(200, json=[])
    await client.probe()
    assert dict(route.calls.last.request.url.params) == {"skip": "0", "take": "1"}
    route.respond(200, json={"not": "a list"})
    with pytest.raises(ContractError):
        await client.probe()


# ---------------------------------------------------------------- answers checked against what was sent


async def test_put_answer_for_another_betnr_is_a_contract_error(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.put(f"{URL}/7").respond(200, json={"betNr": 8, "name": "x"})
    with pytest.raises(ContractError) as info:
        await client.update_beteiligter(7, {"name": "x"})
    assert info.value.record_id == "7"


async def test_put_answer_without_betnr_is_a_contract_error(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.put(f"{URL}/7").respond(200, json={"name": "x"})
    with pytest.raises(ContractError):
        await client.update_beteiligter(7, {"name": "x"})


async def test_get_answer_for_another_betnr_is_a_contract_error(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{URL}/7").respond(200, json={"betNr": 70})
    with pytest.raises(ContractError):
        await client.get_beteiligter(7)


@pytest.mark.parametrize("body", [{"name": "Neu"}, {"betNr": None}, {"betNr": "abc"}])
async def test_create_answer_without_betnr_is_a_contract_error(
    client: AdvowareClient, respx_mock: respx.MockRouter, body: dict[str, object]
) -> None:
    route = respx_mock.post(URL).respond(201, json=body)
    with pytest.raises(ContractError) as info:
        await client.create_beteiligter({"name": "Neu"})
    assert route.call_count == 1  # never resent: the record may exist now
    assert info.value.retryable


async def test_create_answer_with_numeric_string_betnr_is_accepted(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(URL).respond(201, json={"betNr": "901"})
    assert (await client.create_beteiligter({"name": "Neu"}))["betNr"] == "901"


# ---------------------------------------------------------------- observation and auth flow


async def test_token_and_api_calls_are_reported_to_the_observer(respx_mock: respx.MockRouter) -> None:
    seen: list[tuple[str, str, str]] = []

    class Recorder:
        def observe(self, system: str, method: str, status_class: str, seconds: float) -> None:
            seen.append((system, method, status_class))

    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    respx_mock.get(f"{URL}/1").mock(side_effect=[httpx.Response(401), httpx.Response(200, json={"betNr": 1})])
    async with AdvowareClient(
        settings(), redis, retry=default_retry(sleep=_nosleep), limiter=LocalSemaphore(1), observer=Recorder()
    ) as c:
        assert await c.get_beteiligter(1) == {"betNr": 1}
    await redis.aclose()
    # Two token requests (the first, and the renewal after the 401), one API call (its final answer).
    assert seen == [
        ("advoware-token", "POST", "2xx"),
        ("advoware-token", "POST", "2xx"),
        ("advoware", "GET", "2xx"),
    ]


def test_bearer_auth_refuses_a_sync_client() -> None:
    from services.advoware.auth import BearerAuth

    flow = BearerAuth(None)  # type: ignore[arg-type]
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as http:
        with pytest.raises(RuntimeError, match="AsyncClient"):
            http.get("http://advo.test/", auth=flow)
