"""The pydantic models: tolerant on read, strict on what we write."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.advoware.kommkz import KommKz, as_kommkz
from services.advoware.models import AdvowareBeteiligter, validate_payload
from services.beteiligte.models import EspoBeteiligte, validate_patch
from tests.support.records import espo_email, espo_phone


def test_advoware_read_model_is_tolerant_and_keeps_unknown_fields() -> None:
    raw = {
        "betNr": "4711",
        "name": "Müller",
        "kommunikation": None,
        "zusatz": "z",
        "neuesFeld": [1, 2],
        "geaendertAm": "2026-10-25T02:30:00.1234567",
    }
    model = AdvowareBeteiligter.model_validate(raw)
    assert model.bet_nr == 4711 and model.kommunikation == [] and not model.is_company
    dumped = model.model_dump(by_alias=True, exclude_unset=True)
    assert dumped["neuesFeld"] == [1, 2] and dumped["zusatz"] == "z" and dumped["betNr"] == 4711
    assert model.geaendert_am_utc(ZoneInfo("Europe/Berlin")) == datetime(
        2026, 10, 25, 0, 30, 0, 123456, tzinfo=UTC
    )


def test_advoware_company_marker() -> None:
    assert AdvowareBeteiligter.model_validate({"name": "X", "anrede": "Firma"}).is_company
    assert AdvowareBeteiligter.model_validate({"name": "X", "rechtsform": "GmbH"}).is_company


@pytest.mark.parametrize(
    "payload",
    [
        {"name": ""},
        {"name": "  "},
        {},
        {"name": "X", "geburtsdatum": "17.05.1980"},
        {"name": "X", "betNr": 1},
        {"name": "X", "titel": 5},
    ],
)
def test_advoware_payload_validation_refuses(payload: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        validate_payload(payload)


def test_advoware_payload_validation_accepts_unknown_extras() -> None:
    validate_payload(
        {"name": "X", "zusatz": None, "foo": {"bar": 1}, "kommunikation": [{"kommKz": "5", "tlf": "x"}]}
    )


def test_espo_read_model_tolerant() -> None:
    model = EspoBeteiligte.model_validate(
        {"id": "a", "emailAddressData": [{"emailAddress": "a@b.de"}], "x": 1}
    )
    assert model.emailAddressData is not None and model.emailAddressData[0].primary is False
    assert model.model_extra == {"x": 1}


@pytest.mark.parametrize(
    "patch",
    [
        {"rechtsform": "Stiftung"},
        {"salutationName": "Herr"},
        {"beteiligterTyp": "Verein"},
        {"geburtsdatum": "1980-05-17T00:00:00"},
        {"name": ""},
        {"unknownAttr": 1},
        {"phoneNumberData": [espo_phone("1", "Pager")]},
        {"emailAddressData": [espo_email("a@b.de"), espo_email("c@b.de")]},
    ],
)
def test_espo_patch_validation_refuses(patch: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        validate_patch(patch)


def test_kommkz() -> None:
    assert KommKz(12) is KommKz.BEA and int(KommKz.MAIL_PRIVAT) == 8
    assert as_kommkz("4") == 4 and as_kommkz(True) is None and as_kommkz("x") is None
