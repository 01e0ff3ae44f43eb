"""Advoware field names read case-insensitively, in the adapter only (services/advoware/fields.py):
a server sending PascalCase (every public Advoware payload does) is read like the contract's
camelCase, and unknown keys keep the server's spelling for the full-replace PUT."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fakeredis
import httpx
import pytest
import respx

from services.advoware.client import AdvowareClient
from services.advoware.concurrency import LocalSemaphore
from services.advoware.fields import canonical, spelling
from services.beteiligte import mapper
from tests.support.retry import default_retry
from tests.unit.test_advoware_client import TOKEN_URL, URL, settings

ONE = URL + "/100001"

pytestmark = pytest.mark.respx(assert_all_called=False)

PASCAL = {
    "BetNr": 100001,
    "Rechtsform": None,
    "Anrede": "Frau",
    "Titel": "Dr.",
    "Vorname": "Erika",
    "Name": "Mustermann",
    "Geburtsdatum": "1970-01-02",
    "HandelsRegisterNummer": None,
    "Kommunikation": [{"KommKz": 4, "Tlf": "erika@example.de", "Bemerkung": None, "Online": False}],
    "GeaendertAm": "2026-07-01T12:05:09",
    "RowId": "AAAAAAAB9xE=",
    "Aktenzeichen": "12/26",  # unknown to the service: kept as the server spells it
}
CAMEL = {
    "betNr": 100001,
    "rechtsform": None,
    "anrede": "Frau",
    "titel": "Dr.",
    "vorname": "Erika",
    "name": "Mustermann",
    "geburtsdatum": "1970-01-02",
    "handelsRegisterNummer": None,
    "kommunikation": [{"kommKz": 4, "tlf": "erika@example.de", "bemerkung": None, "online": False}],
    "geaendertAm": "2026-07-01T12:05:09",
    "rowId": "AAAAAAAB9xE=",
    "Aktenzeichen": "12/26",
}


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


def test_pascal_case_is_read_as_the_contracts_names() -> None:
    assert canonical(PASCAL) == CAMEL
    assert canonical(CAMEL) == CAMEL  # the contract's own spelling is unchanged
    assert mapper.from_advo(canonical(PASCAL)) == mapper.from_advo(CAMEL)


def test_any_case_and_the_contracts_spelling_wins_over_a_duplicate() -> None:
    assert canonical({"BETNR": 7, "NAME": "A"}) == {"betNr": 7, "name": "A"}
    assert canonical({"Name": "server", "name": "contract"})["name"] == "contract"
    assert canonical({"name": "contract", "Name": "server"})["name"] == "contract"
    assert canonical(["not", "a", "record"]) == ["not", "a", "record"]


def test_spelling_names_each_field_the_server_spells_otherwise() -> None:
    found = spelling(PASCAL)
    assert found["betNr"] == "BetNr" and found["geaendertAm"] == "GeaendertAm"
    assert "Aktenzeichen" not in found.values()
    assert spelling(CAMEL) == {}


async def test_listing_get_and_put_of_a_pascal_case_server(
    client: AdvowareClient, respx_mock: respx.MockRouter
) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[PASCAL] if request.url.params["skip"] == "0" else [])

    respx_mock.get(URL).mock(side_effect=page)
    respx_mock.get(ONE).respond(200, json=PASCAL)
    respx_mock.put(ONE).respond(200, json=PASCAL)
    respx_mock.post(URL).respond(201, json=PASCAL)
    # Before: the listing's PageGuard found no `betNr` (ContractError), GET/PUT/POST answers
    # failed their betNr check, and the mapper read every field as empty.
    assert [row async for row in client.iter_beteiligte()] == [CAMEL]
    assert await client.get_beteiligter(100001) == CAMEL
    assert await client.update_beteiligter(100001, {"name": "Mustermann"}) == CAMEL
    assert await client.create_beteiligter({"name": "Mustermann"}) == CAMEL
