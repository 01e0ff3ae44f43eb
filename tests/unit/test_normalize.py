"""Table tests for the normalisation tables and comparison keys."""

from __future__ import annotations

import logging

import pytest

from services.beteiligte import normalize as n
from services.beteiligte.common import MappingWarning, warn

# --------------------------------------------------------------------------- Rechtsform


@pytest.mark.parametrize(
    ("raw", "value", "known"),
    [
        (None, None, True),
        ("", None, True),
        ("   ", None, True),
        ("GmbH", "GmbH", True),
        ("gmbh", "GmbH", True),
        (" GmbH ", "GmbH", True),
        ("Gesellschaft mit beschränkter Haftung", "GmbH", True),
        ("AG", "AG", True),
        ("Aktiengesellschaft", "AG", True),
        ("UG (haftungsbeschränkt)", "UG (haftungsbeschränkt)", True),
        ("UG haftungsbeschränkt", "UG (haftungsbeschränkt)", True),
        ("UG (haftungsbeschraenkt)", "UG (haftungsbeschränkt)", True),
        ("UG", "UG (haftungsbeschränkt)", True),
        ("GmbH & Co. KG", "GmbH & Co. KG", True),
        ("GmbH & Co KG", "GmbH & Co. KG", True),
        ("GmbH&Co.KG", "GmbH & Co. KG", True),
        ("GmbH u. Co. KG", "GmbH & Co. KG", True),
        ("GmbH und Co. KG", "GmbH & Co. KG", True),
        ("GmbH + Co. KG", "GmbH & Co. KG", True),
        ("KG", "KG", True),
        ("OHG", "OHG", True),
        ("oHG", "OHG", True),
        ("GbR", "GbR", True),
        ("e.K.", "e.K.", True),
        ("e. K.", "e.K.", True),
        ("eK", "e.K.", True),
        ("eingetragener Kaufmann", "e.K.", True),
        ("eG", "eG", True),
        ("e.G.", "eG", True),
        ("e.V.", "e.V.", True),
        ("e. V.", "e.V.", True),
        ("eingetragener Verein", "e.V.", True),
        ("PartG", "PartG", True),
        ("PartG mbB", "PartG mbB", True),
        ("PartGmbB", "PartG mbB", True),
        ("Sonstige", "Sonstige", True),
        # unknown: kept verbatim (whitespace tidied), reported as unknown
        ("Stiftung", "Stiftung", False),
        ("SE", "SE", False),
        ("AG & Co. KG", "AG & Co. KG", False),
        ("Ltd.  ", "Ltd.", False),
        ("GmbH i.L.", "GmbH i.L.", False),
    ],
)
def test_normalize_rechtsform(raw: str | None, value: str | None, known: bool) -> None:
    assert n.normalize_rechtsform(raw) == n.NormalizedValue(value, known)


def test_every_canonical_rechtsform_maps_to_itself() -> None:
    for value in n.RECHTSFORMEN:
        assert n.normalize_rechtsform(value) == (value, True)


def test_rechtsform_variant_keys_do_not_collide() -> None:
    seen: dict[str, str] = {}
    for canonical, variants in n._RECHTSFORM_VARIANTS.items():
        for variant in variants:
            key = n._rechtsform_key(variant)
            assert seen.setdefault(key, canonical) == canonical, variant


@pytest.mark.parametrize(
    ("raw", "compare", "espo"),
    [
        (None, None, ("", True)),
        ("GmbH & Co KG", "GmbH & Co. KG", ("GmbH & Co. KG", True)),
        ("Stiftung", "Sonstige", ("Sonstige", False)),
        ("Sonstige", "Sonstige", ("Sonstige", True)),
    ],
)
def test_rechtsform_compare_and_espo(raw: str | None, compare: str | None, espo: tuple[str, bool]) -> None:
    assert n.rechtsform_compare(raw) == compare
    assert n.rechtsform_to_espo(raw) == espo


# --------------------------------------------------------------------------- salutation


@pytest.mark.parametrize(
    ("raw", "value", "known"),
    [
        (None, None, True),
        ("", None, True),
        ("Mr.", "Herr", True),
        ("Mrs.", "Frau", True),
        ("Ms.", "Frau", True),
        ("Mx.", "Divers", True),
        ("Herr", "Herr", True),
        ("Herrn", "Herr", True),
        ("Hr.", "Herr", True),
        ("herr", "Herr", True),
        ("Frau", "Frau", True),
        ("Fr.", "Frau", True),
        ("Divers", "Divers", True),
        ("divers", "Divers", True),
        ("Firma", "Firma", True),
        ("Fa.", "Firma", True),
        ("Eheleute", "Eheleute", False),
        ("Dr.", "Dr.", False),
        ("Familie ", "Familie", False),
    ],
)
def test_normalize_salutation(raw: str | None, value: str | None, known: bool) -> None:
    assert n.normalize_salutation(raw) == n.NormalizedValue(value, known)


@pytest.mark.parametrize(
    ("canonical", "espo", "anrede", "compare"),
    [
        (None, ("", True), None, None),
        ("Herr", ("Mr.", True), "Herr", "Herr"),
        ("Frau", ("Mrs.", True), "Frau", "Frau"),
        ("Divers", ("Mx.", True), "Divers", "Divers"),
        ("Firma", ("", False), "Firma", None),  # the company marker is no EspoCRM salutation
        ("Eheleute", ("", False), "Eheleute", None),  # EspoCRM cannot hold it; compares as empty
    ],
)
def test_salutation_both_ways(
    canonical: str | None, espo: tuple[str, bool], anrede: str | None, compare: str | None
) -> None:
    assert n.salutation_to_espo(canonical) == espo
    assert n.salutation_to_anrede(canonical) == anrede
    assert n.salutation_compare(canonical) == compare


def test_espo_salutation_tables_are_inverse() -> None:
    for espo_value, anrede in n.ESPO_SALUTATION_TO_ANREDE.items():
        assert n.ESPO_SALUTATION_TO_ANREDE[n.ANREDE_TO_ESPO_SALUTATION[anrede]] == anrede
        assert espo_value in n.ESPO_SALUTATIONS
    assert set(n.ANREDE_TO_ESPO_SALUTATION) == set(n.ANREDEN)


# --------------------------------------------------------------------------- text, dates, keys


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        (" Müller ", "Müller"),
        ("Hans  Peter\tMüller", "Hans Peter Müller"),
        ("Mu\u0308ller", "Müller"),  # NFD → NFC
        ("Straße", "Straße"),
        (12345, "12345"),
        (True, None),
    ],
)
def test_text(raw: object, expected: str | None) -> None:
    assert n.text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("1980-05-17", "1980-05-17"),
        ("1980-05-17T00:00:00", "1980-05-17"),
        ("1980-05-17T00:00:00+02:00", "1980-05-17"),  # taken as written: no shift by a day
        ("1980-05-17T23:59:59Z", "1980-05-17"),
        ("17.05.1980", "1980-05-17"),
        ("1.5.1980", "1980-05-01"),
        ("2000-02-29", "2000-02-29"),
    ],
)
def test_parse_date(raw: str | None, expected: str | None) -> None:
    assert n.parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["gestern", "1980-02-30", "17/05/1980", "19800517"])
def test_parse_date_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        n.parse_date(raw)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("+49 30 1234567", "030 1234567"),
        ("+49 30 1234567", "0049 30 1234567"),
        ("030/123 45 67", "(030) 1234567"),
        ("+49 (0) 30 1234567", "030-1234567"),
        ("0171 2345678", "+491712345678"),
    ],
)
def test_phone_key_equal(a: str, b: str) -> None:
    assert n.phone_key(a) == n.phone_key(b)


def test_phone_key_different_and_fallback() -> None:
    assert n.phone_key("030 1234567") != n.phone_key("030 1234568")
    assert n.phone_key("+1 212 555 0100") == "+12125550100"
    assert n.phone_key("+999 123-4") == "+9991234"  # no such country code: its digits


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("030 1234567", True),
        ("+49 (30) 123-45/67", True),
        ("siehe Zentrale", False),
        ("12", False),
        ("a@b.de", False),
    ],
)
def test_is_phone(value: str, ok: bool) -> None:
    assert n.is_phone(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a@b.de", True),
        ("Anna.Müller@Beispiel.de", True),
        ("a@b", False),
        ("a b@c.de", False),
        ("www.x.de", False),
    ],
)
def test_is_email(value: str, ok: bool) -> None:
    assert n.is_email(value) is ok


def test_email_key_case_insensitive() -> None:
    assert n.email_key(" Anna@Example.DE ") == n.email_key("anna@example.de")


@pytest.mark.parametrize(
    ("a", "b"), [("HRB 12345", "HRB12345"), ("hrb 12345 B", "HRB 12345B"), ("HR B 1", "HRB 1")]
)
def test_register_number_compare(a: str, b: str) -> None:
    assert n.register_number_compare(a) == n.register_number_compare(b)


def test_register_court_compare() -> None:
    assert n.register_court_compare("AG München") == n.register_court_compare("Amtsgericht  München")
    assert n.register_court_compare("Amtsgericht München") != n.register_court_compare("Amtsgericht Berlin")


def test_warn_logs_field_not_value(caplog: pytest.LogCaptureFixture) -> None:
    sink: list[MappingWarning] = []
    with caplog.at_level(logging.WARNING):
        warn(sink, "legal_form", "unknown_value", "Geheime Stiftung")
    assert sink == [MappingWarning("legal_form", "unknown_value", "Geheime Stiftung")]
    assert "legal_form" in caplog.text and "Geheime" not in caplog.text
