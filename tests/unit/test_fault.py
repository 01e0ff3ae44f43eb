"""Whose fault is a failure (services/sync/fault.py): one test per row of the module's table,
each with the error as the client raises it (the HTTP rows go through the real client base:
status table, Advoware's body texts, httpx's transport errors)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from services.beteiligte.common import MappingError
from services.errors import (
    ApiError,
    ConflictError,
    ContractError,
    NotFoundUnconfirmedError,
    RateLimitedError,
    SyncServiceError,
    UnavailableError,
    ValidationError,
)
from services.sync.fault import Fault, classify, is_system_fault
from tests.support.fakes import fake_redis
from tests.support.retry import default_retry
from tests.unit.test_advoware_client import TOKEN_URL, URL, settings

pytestmark = pytest.mark.respx(assert_all_called=False)


async def advoware_error(respx_mock: respx.MockRouter, answer: Any) -> ApiError:
    """What `probe()` of the real Advoware client raises when its listing answers `answer`
    (a response's keyword arguments, or a transport exception); one attempt, no retry."""
    from services.advoware.client import AdvowareClient
    from services.advoware.concurrency import LocalSemaphore

    respx_mock.post(TOKEN_URL).respond(200, json={"access_token": "t", "expires_in": 3600})
    route = respx_mock.get(URL)
    route.mock(side_effect=answer) if isinstance(answer, Exception) else route.respond(**answer)
    retry = default_retry(max_attempts=1, unsent_attempts=1)
    async with AdvowareClient(settings(), fake_redis(), retry=retry, limiter=LocalSemaphore(1)) as client:
        with pytest.raises(ApiError) as info:
            await client.probe()
    return info.value


async def test_connection_refused_is_the_systems(respx_mock: respx.MockRouter) -> None:
    exc = await advoware_error(respx_mock, httpx.ConnectError("refused"))
    assert classify(exc) is Fault.SYSTEM


async def test_connect_timeout_is_the_systems(respx_mock: respx.MockRouter) -> None:
    exc = await advoware_error(respx_mock, httpx.ConnectTimeout("connect timeout"))
    assert classify(exc) is Fault.SYSTEM


async def test_connection_reset_is_the_systems(respx_mock: respx.MockRouter) -> None:
    exc = await advoware_error(respx_mock, httpx.ReadError("connection reset by peer"))
    assert classify(exc) is Fault.SYSTEM


async def test_server_disconnected_is_the_systems(respx_mock: respx.MockRouter) -> None:
    exc = await advoware_error(
        respx_mock, httpx.RemoteProtocolError("server disconnected without a response")
    )
    assert classify(exc) is Fault.SYSTEM


async def test_read_timeout_is_the_systems(respx_mock: respx.MockRouter) -> None:
    exc = await advoware_error(respx_mock, httpx.ReadTimeout("no answer"))
    assert classify(exc) is Fault.SYSTEM


async def test_nicht_angemeldet_is_the_systems(respx_mock: respx.MockRouter) -> None:
    body = {"Message": "Die Kanzlei K ist nicht angemeldet"}
    exc = await advoware_error(respx_mock, {"status_code": 503, "json": body})
    assert classify(exc) is Fault.SYSTEM


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_and_unavailable_statuses_are_the_systems(
    status: int, respx_mock: respx.MockRouter
) -> None:
    exc = await advoware_error(respx_mock, {"status_code": status, "text": "<html>proxy</html>"})
    assert classify(exc) is Fault.SYSTEM


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failure_is_the_credentials(status: int, respx_mock: respx.MockRouter) -> None:
    exc = await advoware_error(respx_mock, {"status_code": status})
    assert classify(exc) is Fault.CREDENTIALS


async def test_advoware_refusing_the_configuration_is_the_credentials(respx_mock: respx.MockRouter) -> None:
    body = {"Message": "Die Kanzlei K ist nicht registriert"}
    exc = await advoware_error(respx_mock, {"status_code": 500, "json": body})
    assert classify(exc) is Fault.CREDENTIALS


def test_unconfirmed_404_is_the_records() -> None:
    exc = NotFoundUnconfirmedError("404 not confirmed", system="advoware", status_code=404)
    assert classify(exc) is Fault.RECORD


async def test_a_500_is_the_records(respx_mock: respx.MockRouter) -> None:
    exc = await advoware_error(respx_mock, {"status_code": 500, "json": {"Message": "Datensatz gesperrt"}})
    assert classify(exc) is Fault.RECORD


def test_unavailable_without_status_is_the_records() -> None:
    # Our own side (the token lease), or an answer that is not JSON.
    exc = UnavailableError("timed out waiting for the token lease", system="advoware")
    assert classify(exc) is Fault.RECORD


async def test_rate_limited_is_the_records(respx_mock: respx.MockRouter) -> None:
    exc = await advoware_error(respx_mock, {"status_code": 429, "headers": {"Retry-After": "1"}})
    assert isinstance(exc, RateLimitedError) and classify(exc) is Fault.RECORD


def test_contract_error_is_the_records() -> None:
    exc = ContractError("GET Beteiligte: the answer is not a JSON array", system="advoware", status_code=200)
    assert classify(exc) is Fault.RECORD


@pytest.mark.parametrize(
    "exc",
    [
        ValidationError("POST rejected", system="advoware", status_code=400, reason="name: required"),
        ConflictError("POST conflict", system="espocrm", status_code=409),
    ],
    ids=["400", "409"],
)
def test_refused_data_is_the_datas(exc: ApiError) -> None:
    assert classify(exc) is Fault.DATA


def test_mapper_refusal_is_the_datas() -> None:
    exc: SyncServiceError = MappingError("name", "required")
    assert classify(exc) is Fault.DATA


def test_only_system_and_credential_faults_are_probed() -> None:
    assert is_system_fault(UnavailableError("x", system="espocrm", status_code=503))
    assert not is_system_fault(UnavailableError("x", system="espocrm", status_code=500))
    assert not is_system_fault(ValidationError("x", system="espocrm", status_code=400))
