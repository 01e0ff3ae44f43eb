"""Example tests of the mapper: reading, comparing, writing both ways, decisions on edge cases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from services.beteiligte import mapper
from services.beteiligte.common import MappingError, MappingWarning
from tests.support.records import espo_email, espo_phone

ALL = mapper.CANONICAL_FIELDS
ROOT = Path(__file__).resolve().parents[2]


def espo_person(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": "6650aaa0000000001",
        "name": "Jürgen Weiß",
        "firstName": "Jürgen",
        "lastName": "Weiß",
        "salutationName": "Mr.",
        "beteiligterTyp": "Person",
        "titel": "Dr.",
        "geburtsdatum": "1975-03-29",
        "rechtsform": "",
        "handelsregisterNummer": None,
        "registergericht": None,
        "emailAddress": "J.Weiss@Example.de",
        "emailAddressData": [
            espo_email("j.weiss@privat.de", primary=False, opt_out=True),
            espo_email("J.Weiss@Example.de"),
        ],
        "phoneNumber": "+49 30 1234567",
        "phoneNumberData": [
            espo_phone("+49 30 1234567"),
            espo_phone("0171 2345678", "Mobile", primary=False),
        ],
        "betnr": 1001,
        "syncStatus": "clean",
        "modifiedAt": "2026-07-01 10:15:00",
    }
    rec.update(over)
    return rec


def advo_person(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "betNr": 1001,
        "rechtsform": None,
        "anrede": "Herr",
        "titel": "Dr.",
        "vorname": "Jürgen",
        "name": "Weiß",
        "zusatz": "Rechtsanwalt a. D.",
        "geburtsdatum": "1975-03-29T00:00:00",
        "handelsRegisterNummer": None,
        "registergericht": None,
        "kommunikation": [
            {"kommKz": 5, "tlf": "https://weiss.example", "bemerkung": "Homepage", "online": True},
            {"kommKz": 1, "tlf": "030 1234567", "bemerkung": "Zentrale", "online": False},
            {"kommKz": 4, "tlf": "j.weiss@example.de", "bemerkung": None, "online": True},
            {"kommKz": 12, "tlf": "safe-id-123", "bemerkung": None, "online": True},
            {"kommKz": 9, "tlf": "0171/2345678", "bemerkung": "Auto", "online": False},
            {"kommKz": 8, "tlf": "j.weiss@privat.de", "bemerkung": None, "online": False},
        ],
        "geaendertAm": "2026-07-01T12:15:00.123",
        "angelegtAm": "2020-01-01T08:00:00",
        "unbekanntesFeld": {"x": [1, 2]},
    }
    rec.update(over)
    return rec


def advo_company(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "betNr": 2002,
        "rechtsform": "GmbH & Co KG",
        "anrede": "Firma",
        "titel": None,
        "vorname": None,
        "name": "Müller & Söhne Bau",
        "zusatz": None,
        "geburtsdatum": None,
        "handelsRegisterNummer": "HRB 12345",
        "registergericht": "Amtsgericht München",
        "kommunikation": [{"kommKz": 4, "tlf": "info@mueller-bau.de", "bemerkung": None, "online": True}],
        "geaendertAm": "2026-10-25T02:30:00",
    }
    rec.update(over)
    return rec


# --------------------------------------------------------------------------- reading


def test_from_espo_person() -> None:
    assert mapper.from_espo(espo_person()) == {
        "kind": "person",
        "salutation": "Herr",
        "title": "Dr.",
        "first_name": "Jürgen",
        "last_name": "Weiß",
        "company_name": None,
        "legal_form": None,
        "birth_date": "1975-03-29",
        "register_number": None,
        "register_court": None,
        "emails": [
            {"address": "J.Weiss@Example.de", "primary": True},
            {"address": "j.weiss@privat.de", "primary": False},
        ],
        "phones": [
            {"number": "+49 30 1234567", "type": "Office", "primary": True},
            {"number": "0171 2345678", "type": "Mobile", "primary": False},
        ],
    }


def test_from_advo_person_matches_espo_person() -> None:
    content = mapper.from_advo(advo_person())
    assert content["birth_date"] == "1975-03-29"  # date part as written, no shift
    assert content["emails"] == [
        {"address": "j.weiss@example.de", "primary": True},
        {"address": "j.weiss@privat.de", "primary": False},
    ]
    assert content["phones"] == [
        {"number": "030 1234567", "type": "Office", "primary": True},
        {"number": "0171/2345678", "type": "Mobile", "primary": False},  # AutoTelefon reads as Mobile
    ]
    assert mapper.diff(content, mapper.from_espo(espo_person())) == set()
    assert mapper.get_changed_fields(espo_person(), advo_person()) == {}


def test_from_advo_company() -> None:
    content = mapper.from_advo(advo_company())
    assert content["kind"] == "company"
    assert content["company_name"] == "Müller & Söhne Bau"
    assert content["legal_form"] == "GmbH & Co. KG"
    assert content["first_name"] is None and content["last_name"] is None and content["salutation"] is None
    assert content["register_number"] == "HRB 12345"


@pytest.mark.parametrize(
    ("record", "kind"),
    [
        ({"rechtsform": None, "anrede": "Frau", "name": "X"}, "person"),
        ({"rechtsform": "", "anrede": None, "name": "X"}, "person"),
        ({"rechtsform": "GmbH", "anrede": None, "name": "X"}, "company"),
        ({"rechtsform": None, "anrede": "Firma", "name": "X"}, "company"),
        ({"rechtsform": "Stiftung", "anrede": "Herr", "name": "X"}, "company"),
    ],
)
def test_advo_kind(record: dict[str, Any], kind: str) -> None:
    assert mapper.from_advo(record)["kind"] == kind


@pytest.mark.parametrize(
    ("record", "kind"),
    [
        ({"beteiligterTyp": "Person", "rechtsform": "GmbH"}, "person"),
        ({"beteiligterTyp": "Firma"}, "company"),
        ({"rechtsform": "AG"}, "company"),
        ({}, "person"),
    ],
)
def test_espo_kind(record: dict[str, Any], kind: str) -> None:
    assert mapper.from_espo(record)["kind"] == kind


def test_person_with_legal_form_in_espo_is_reported_and_ignored() -> None:
    warnings: list[MappingWarning] = []
    content = mapper.from_espo(espo_person(rechtsform="GmbH"), warnings=warnings)
    assert content["legal_form"] is None
    assert MappingWarning("legal_form", "ignored", "GmbH") in warnings


def test_espo_person_with_only_display_name() -> None:
    content = mapper.from_espo({"beteiligterTyp": "Person", "name": "Anonym"})
    assert (content["first_name"], content["last_name"]) == (None, "Anonym")


def test_espo_list_row_without_data_arrays_uses_scalars() -> None:
    row = {"beteiligterTyp": "Person", "lastName": "X", "emailAddress": "a@b.de", "phoneNumber": "030 111222"}
    content = mapper.from_espo(row)
    assert content["emails"] == [{"address": "a@b.de", "primary": True}]
    assert content["phones"] == [{"number": "030 111222", "type": "Other", "primary": True}]


def test_espo_without_primary_flag_first_is_primary() -> None:
    rec = espo_person(emailAddressData=[{"emailAddress": "a@b.de"}, {"emailAddress": "c@d.de"}])
    assert mapper.from_espo(rec)["emails"] == [
        {"address": "a@b.de", "primary": True},
        {"address": "c@d.de", "primary": False},
    ]


def test_missing_and_empty_values_are_none() -> None:
    a = mapper.from_espo({"beteiligterTyp": "Person", "lastName": "X", "titel": "", "geburtsdatum": ""})
    b = mapper.from_advo({"name": "X "})
    assert a == b
    assert a["title"] is None and a["birth_date"] is None and a["emails"] == [] and a["phones"] == []


def test_non_contact_values_are_not_synced_but_reported() -> None:
    warnings: list[MappingWarning] = []
    rec = advo_person(
        kommunikation=[
            {"kommKz": 1, "tlf": "siehe Zentrale", "bemerkung": None, "online": False},
            {"kommKz": 4, "tlf": "keine Mail", "bemerkung": None, "online": False},
        ]
    )
    content = mapper.from_advo(rec, warnings=warnings)
    assert content["emails"] == [] and content["phones"] == []
    assert {(w.field, w.code) for w in warnings} == {("emails", "invalid"), ("phones", "invalid")}
    # ...and a write keeps them exactly where they are
    payload = mapper.to_advo_payload(mapper.from_espo(espo_person()), rec)
    assert payload["kommunikation"][:2] == rec["kommunikation"]


# --------------------------------------------------------------------------- comparing


@pytest.mark.parametrize(
    ("espo_over", "advo_over"),
    [
        ({"lastName": "Weiß  "}, {}),
        ({"firstName": "Ju\u0308rgen"}, {}),  # NFD vs NFC
        ({"salutationName": "Mr."}, {"anrede": "Herrn"}),
        ({"handelsregisterNummer": "HRB12345"}, {"handelsRegisterNummer": "HRB 12345"}),
        ({"registergericht": "AG München"}, {"registergericht": "Amtsgericht München"}),
        (
            {"phoneNumberData": [{"phoneNumber": "+49 (30) 123 45 67", "type": "Office", "primary": True}]},
            {"kommunikation": [{"kommKz": 1, "tlf": "030/1234567", "bemerkung": None, "online": False}]},
        ),
        (
            {"emailAddressData": [{"emailAddress": "ANNA@Example.DE", "primary": True}]},
            {"kommunikation": [{"kommKz": 8, "tlf": "anna@example.de", "bemerkung": None, "online": False}]},
        ),
    ],
)
def test_formatting_only_is_no_change(espo_over: dict[str, Any], advo_over: dict[str, Any]) -> None:
    espo = espo_person(**espo_over)
    advo = advo_person(**advo_over)
    if "phoneNumberData" in espo_over:
        espo["emailAddressData"] = []
        advo["kommunikation"] = advo_over["kommunikation"]
    if "emailAddressData" in espo_over:
        espo["phoneNumberData"] = []
    e, a = mapper.from_espo(espo), mapper.from_advo(advo)
    changed = mapper.diff(e, a)
    assert not changed & {"last_name", "first_name", "salutation", "register_number", "register_court"}
    if "phoneNumberData" in espo_over:
        assert "phones" not in changed
    if "emailAddressData" in espo_over:
        assert "emails" not in changed


def test_company_formatting_only() -> None:
    espo = {
        "beteiligterTyp": "Firma",
        "name": "Müller & Söhne Bau ",
        "rechtsform": "GmbH & Co. KG",
        "handelsregisterNummer": "HRB 12345",
        "registergericht": "Amtsgericht München",
        "emailAddressData": [{"emailAddress": "Info@Mueller-Bau.de", "primary": True}],
    }
    assert mapper.get_changed_fields(espo, advo_company()) == {}
    assert mapper.content_hash(mapper.from_espo(espo)) == mapper.content_hash(
        mapper.from_advo(advo_company())
    )


def test_real_changes_are_reported() -> None:
    changed = mapper.get_changed_fields(
        espo_person(lastName="Weiss", geburtsdatum="1975-03-30"),
        advo_person(),
    )
    assert changed == {"last_name": ("Weiss", "Weiß"), "birth_date": ("1975-03-30", "1975-03-29")}


def test_primary_change_and_type_change_are_changes_but_secondary_order_is_not() -> None:
    base = mapper.from_espo(espo_person())
    swapped_primary = dict(
        base, emails=[dict(base["emails"][1], primary=True), dict(base["emails"][0], primary=False)]
    )
    assert mapper.diff(base, swapped_primary) == {"emails"}
    retyped = dict(base, phones=[base["phones"][0], dict(base["phones"][1], type="Home")])
    assert mapper.diff(base, retyped) == {"phones"}
    three = [{"address": f"{x}@b.de", "primary": x == "a"} for x in "abc"]
    reordered = [three[0], three[2], three[1]]
    assert mapper.diff(dict(base, emails=three), dict(base, emails=reordered)) == set()


def test_content_hash_stable_under_key_order_and_across_processes() -> None:
    content = mapper.from_espo(espo_person())
    shuffled = dict(reversed(list(content.items())))
    assert mapper.content_hash(content) == mapper.content_hash(shuffled)
    code = (
        "import json,sys; from services.beteiligte import mapper; "
        "print(mapper.content_hash(json.loads(sys.stdin.read())))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(content),
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        cwd=str(ROOT),
    )
    assert out.stdout.strip() == mapper.content_hash(content)
    assert len(mapper.content_hash(content)) == 64


def test_content_hash_changes_with_content() -> None:
    content = mapper.from_espo(espo_person())
    assert mapper.content_hash(content) != mapper.content_hash(dict(content, title="Prof. Dr."))


# --------------------------------------------------------------------------- writing Advoware


def test_create_payload_person() -> None:
    payload = mapper.to_advo_payload(mapper.from_espo(espo_person()), None)
    assert payload["anrede"] == "Herr"
    assert payload["rechtsform"] is None
    assert payload["vorname"] == "Jürgen" and payload["name"] == "Weiß"
    assert payload["geburtsdatum"] == "1975-03-29"
    assert "betNr" not in payload
    assert payload["kommunikation"] == [
        {"kommKz": 8, "tlf": "J.Weiss@Example.de", "bemerkung": None, "online": False},
        {"kommKz": 8, "tlf": "j.weiss@privat.de", "bemerkung": None, "online": False},
        {"kommKz": 1, "tlf": "+49 30 1234567", "bemerkung": None, "online": False},
        {"kommKz": 3, "tlf": "0171 2345678", "bemerkung": None, "online": False},
    ]


def test_create_payload_company_without_rechtsform_keeps_its_kind() -> None:
    content = mapper.from_espo({"beteiligterTyp": "Firma", "name": "Kanzlei Nord", "rechtsform": ""})
    payload = mapper.to_advo_payload(content, None)
    assert payload["anrede"] == "Firma" and payload["rechtsform"] is None
    assert mapper.from_advo(payload)["kind"] == "company"
    # new company e-mails are MailGesch
    payload = mapper.to_advo_payload(dict(content, emails=[{"address": "a@b.de", "primary": True}]), None)
    assert payload["kommunikation"][0]["kommKz"] == 4


def test_unchanged_content_gives_back_the_base_exactly() -> None:
    base = advo_person()
    payload = mapper.to_advo_payload(mapper.from_espo(espo_person()), base)
    expected = {k: v for k, v in base.items() if k not in ("betNr", "geaendertAm", "angelegtAm")}
    assert payload == expected  # spelling kept, zusatz kept, unknown keys kept, nothing rewritten


def test_changed_payload_keeps_unmapped_and_unowned() -> None:
    base = advo_person()
    content = mapper.from_espo(espo_person(lastName="Weiss-Neu", titel=None))
    payload = mapper.to_advo_payload(content, base)
    assert payload["name"] == "Weiss-Neu" and payload["titel"] is None
    assert payload["zusatz"] == "Rechtsanwalt a. D."
    assert payload["unbekanntesFeld"] == {"x": [1, 2]}
    assert "geaendertAm" not in payload and "angelegtAm" not in payload and "betNr" not in payload
    assert payload["kommunikation"] == base["kommunikation"]
    assert base["name"] == "Weiß"  # base not mutated


def test_contact_changes_keep_unowned_entries_in_place_and_primary_first() -> None:
    base = advo_person()
    espo = espo_person(
        emailAddressData=[
            {"emailAddress": "j.weiss@privat.de", "primary": True},  # primary changes
            {"emailAddress": "neu@example.de", "primary": False},  # new; j.weiss@example.de removed
        ],
        phoneNumberData=[
            {"phoneNumber": "+49 171 2345678", "type": "Mobile", "primary": True},  # primary changes
            {"phoneNumber": "030 1234567", "type": "Home", "primary": False},  # type changes
            {"phoneNumber": "089 987654", "type": "Fax", "primary": False},  # new
        ],
    )
    payload = mapper.to_advo_payload(mapper.from_espo(espo), base)
    assert payload["kommunikation"] == [
        base["kommunikation"][0],  # Internet: untouched, same place
        base["kommunikation"][4],  # first phone slot: the new primary (AutoTelefon, kommKz/bemerkung kept)
        base["kommunikation"][5],  # first e-mail slot: the new primary
        base["kommunikation"][3],  # beA: untouched, same place
        {
            "kommKz": 6,
            "tlf": "030 1234567",
            "bemerkung": "Zentrale",
            "online": False,
        },  # retyped, spelling kept
        {
            "kommKz": 8,
            "tlf": "neu@example.de",
            "bemerkung": None,
            "online": False,
        },  # new: person → MailPrivat
        {"kommKz": 2, "tlf": "089 987654", "bemerkung": None, "online": False},  # new fax: FaxGesch
    ]
    back = mapper.from_advo(payload)
    assert mapper.diff(back, mapper.from_espo(espo)) == set()
    kz = [e["kommKz"] for e in payload["kommunikation"]]
    assert kz.count(5) == 1 and kz.count(12) == 1
    unowned_positions = [i for i, e in enumerate(payload["kommunikation"]) if e["kommKz"] in (5, 12)]
    assert unowned_positions == [0, 3]
    emails = [e for e in payload["kommunikation"] if e["kommKz"] in (4, 8)]
    assert [e["tlf"] for e in emails] == ["j.weiss@privat.de", "neu@example.de"]
    assert emails[1]["kommKz"] == 8  # new e-mail of a person: MailPrivat
    phones = [e for e in payload["kommunikation"] if e["kommKz"] in (1, 2, 3, 6, 7, 9, 10)]
    assert phones == [
        {"kommKz": 9, "tlf": "0171/2345678", "bemerkung": "Auto", "online": False},
        {"kommKz": 6, "tlf": "030 1234567", "bemerkung": "Zentrale", "online": False},
        {"kommKz": 2, "tlf": "089 987654", "bemerkung": None, "online": False},
    ]


def test_fax_privat_stays_fax_privat() -> None:
    base = advo_person(kommunikation=[{"kommKz": 7, "tlf": "030 555", "bemerkung": None, "online": False}])
    content = mapper.from_advo(base)
    assert content["phones"] == [{"number": "030 555", "type": "Fax", "primary": True}]
    espo_patch = mapper.to_espo_patch(content, ["phones"])
    assert espo_patch["phoneNumberData"][0]["type"] == "Fax"
    content2 = dict(content, phones=mapper.from_espo(espo_patch)["phones"])
    new = dict(
        content2, phones=[*content2["phones"], {"number": "030 556", "type": "Office", "primary": False}]
    )
    payload = mapper.to_advo_payload(new, base)
    assert [e["kommKz"] for e in payload["kommunikation"]] == [7, 1]


def test_duplicate_advoware_numbers_survive_a_write() -> None:
    base = advo_person(
        kommunikation=[
            {"kommKz": 1, "tlf": "030 1234567", "bemerkung": None, "online": False},
            {"kommKz": 2, "tlf": "030 1234567", "bemerkung": "auch Fax", "online": False},
        ]
    )
    content = mapper.from_advo(base)
    assert len(content["phones"]) == 1
    changed = dict(content, title="Prof.")
    assert mapper.to_advo_payload(changed, base)["kommunikation"] == base["kommunikation"]
    added = dict(
        content, phones=[*content["phones"], {"number": "030 999", "type": "Other", "primary": False}]
    )
    out = mapper.to_advo_payload(added, base)["kommunikation"]
    assert out[:2] == base["kommunikation"] and out[2]["tlf"] == "030 999"


def test_kind_change_person_to_company_in_advoware() -> None:
    base = advo_person()
    content = mapper.from_espo({"beteiligterTyp": "Firma", "name": "Weiß GmbH", "rechtsform": "GmbH"})
    payload = mapper.to_advo_payload(content, base)
    assert (payload["rechtsform"], payload["anrede"], payload["vorname"], payload["name"]) == (
        "GmbH",
        "Firma",
        None,
        "Weiß GmbH",
    )
    assert payload["zusatz"] == base["zusatz"]
    assert mapper.diff(mapper.from_advo(payload), content) == set()


def test_unknown_rechtsform_is_kept_in_advoware_and_shown_as_sonstige() -> None:
    base = advo_company(rechtsform="Stiftung")
    warnings: list[MappingWarning] = []
    content = mapper.from_advo(base, warnings=warnings)
    assert content["legal_form"] == "Stiftung"
    assert MappingWarning("legal_form", "unknown_value", "Stiftung") in warnings
    patch = mapper.to_espo_patch(content, ["legal_form"], warnings=warnings)
    assert patch == {"rechtsform": "Sonstige"}
    assert MappingWarning("legal_form", "not_representable", "Stiftung") in warnings
    espo = {
        "beteiligterTyp": "Firma",
        "name": base["name"],
        "rechtsform": "Sonstige",
        **_espo_contacts(content),
    }
    espo |= {"handelsregisterNummer": "HRB 12345", "registergericht": "Amtsgericht München"}
    assert mapper.get_changed_fields(espo, base) == {}
    # EspoCRM's "Sonstige" never overwrites Advoware's "Stiftung" ...
    assert mapper.to_advo_payload(mapper.from_espo(espo), base)["rechtsform"] == "Stiftung"
    # ... until someone picks a real value
    assert (
        mapper.to_advo_payload(mapper.from_espo(espo | {"rechtsform": "GmbH"}), base)["rechtsform"] == "GmbH"
    )


def test_unknown_anrede_is_kept_in_advoware() -> None:
    base = advo_person(anrede="Eheleute")
    warnings: list[MappingWarning] = []
    content = mapper.from_advo(base, warnings=warnings)
    assert content["salutation"] == "Eheleute"
    assert ("salutation", "unknown_value") in {(w.field, w.code) for w in warnings}
    assert mapper.to_espo_patch(content, ["salutation"], warnings=warnings) == {"salutationName": ""}
    espo = espo_person(salutationName="")
    assert "salutation" not in mapper.get_changed_fields(espo, base)
    assert mapper.to_advo_payload(mapper.from_espo(espo), base)["anrede"] == "Eheleute"


def test_salutation_is_read_for_persons_only_and_an_unrepresentable_one_is_reported() -> None:
    warnings: list[MappingWarning] = []
    company = mapper.from_espo(
        {"beteiligterTyp": "Firma", "name": "X GmbH", "salutationName": "Mr."}, warnings=warnings
    )
    assert company["salutation"] is None
    assert (
        mapper.from_espo(espo_person(salutationName="Fa."), warnings=warnings)["salutation"] is None
    )  # a company marker
    assert warnings == []  # neither is reported (unlike a legal form on a person)
    content = mapper.from_advo(advo_person(anrede="Eheleute"))
    assert mapper.to_espo_patch(content, ["salutation"], warnings=warnings) == {"salutationName": ""}
    assert warnings == [MappingWarning("salutation", "not_representable", "Eheleute")]


def _espo_contacts(content: dict[str, Any]) -> dict[str, Any]:
    return mapper.to_espo_patch(content, ["emails", "phones"])


@pytest.mark.parametrize(
    "content_over",
    [
        {"last_name": None},
        {"last_name": "   "},
        {"birth_date": "1975-02-30"},
    ],
)
def test_invalid_advoware_output_is_refused(content_over: dict[str, Any]) -> None:
    content = dict(mapper.from_espo(espo_person()), **content_over)
    with pytest.raises(MappingError) as info:
        mapper.to_advo_payload(content, None)
    assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------------- writing EspoCRM


def test_espo_patch_for_names_rewrites_display_name() -> None:
    content = mapper.from_advo(advo_person(vorname="Hans Jürgen"))
    assert mapper.to_espo_patch(content, ["first_name"]) == {
        "firstName": "Hans Jürgen",
        "lastName": "Weiß",
        "name": "Hans Jürgen Weiß",
    }


def test_espo_patch_kind_change_writes_all_name_fields() -> None:
    content = mapper.from_advo(advo_company())
    assert mapper.to_espo_patch(content, ["kind"]) == {
        "beteiligterTyp": "Firma",
        "salutationName": "",
        "firstName": None,
        "lastName": None,
        "name": "Müller & Söhne Bau",
        "rechtsform": "GmbH & Co. KG",
    }
    person = mapper.from_advo(advo_person())
    assert mapper.to_espo_patch(person, ["kind"]) == {
        "beteiligterTyp": "Person",
        "salutationName": "Mr.",
        "firstName": "Jürgen",
        "lastName": "Weiß",
        "name": "Jürgen Weiß",
        "rechtsform": "",
    }


def test_espo_patch_contacts_keep_current_spelling_and_flags() -> None:
    current = espo_person()
    content = mapper.from_advo(advo_person())
    patch = mapper.to_espo_patch(content, ["emails", "phones"], current=current)
    assert patch["emailAddressData"] == [
        {
            "emailAddress": "J.Weiss@Example.de",
            "lower": "j.weiss@example.de",
            "primary": True,
            "optOut": False,
            "invalid": False,
        },
        {
            "emailAddress": "j.weiss@privat.de",
            "lower": "j.weiss@privat.de",
            "primary": False,
            "optOut": True,
            "invalid": False,
        },
    ]
    assert [p["phoneNumber"] for p in patch["phoneNumberData"]] == ["+49 30 1234567", "0171 2345678"]
    # without the current record, Advoware's spelling is written and the flags are reset
    bare = mapper.to_espo_patch(content, ["emails"])
    assert bare["emailAddressData"][1]["optOut"] is False
    assert bare["emailAddressData"][0]["emailAddress"] == "j.weiss@example.de"


def test_espo_patch_only_requested_fields() -> None:
    content = mapper.from_advo(advo_person())
    assert mapper.to_espo_patch(content, []) == {}
    assert mapper.to_espo_patch(content, ["birth_date"]) == {"geburtsdatum": "1975-03-29"}
    assert mapper.to_espo_patch(content, ["salutation"]) == {"salutationName": "Mr."}
    assert mapper.to_espo_patch(dict(content, salutation="Frau"), ["salutation"]) == {
        "salutationName": "Mrs."
    }


def test_espo_patch_refuses_invalid_output() -> None:
    content = mapper.from_advo(advo_person())
    with pytest.raises(MappingError):
        mapper.to_espo_patch(content, ["nonsense"])
    with pytest.raises(MappingError):
        mapper.to_espo_patch(dict(content, first_name=None, last_name=None), ["last_name"])
    with pytest.raises(MappingError):
        mapper.to_espo_patch(dict(content, birth_date="29.03.1975x"), ["birth_date"])
    with pytest.raises(MappingError):
        mapper.to_espo_patch(
            dict(content, emails=[{"address": "kein-at-zeichen", "primary": True}]), ["emails"]
        )
    # a phone type EspoCRM does not know is written as "Other"
    patch = mapper.to_espo_patch(
        dict(content, phones=[{"number": "030 1", "type": "Pager", "primary": True}]), ["phones"]
    )
    assert patch["phoneNumberData"][0]["type"] == "Other"


def test_describe() -> None:
    assert mapper.describe("emails", [{"address": "a@b.de", "primary": True}, {"address": "c@d.de"}]) == (
        "emails: a@b.de, c@d.de"
    )
    assert mapper.describe("phones", [{"number": "030 1", "type": "Office"}]) == "phones: 030 1 (Office)"
    assert mapper.describe("title", None) == "title: (leer)"
    assert mapper.describe("kind", "company") == "kind: Firma"
    assert len(mapper.describe("company_name", "x" * 500)) < 220


def test_importing_the_mapper_is_light() -> None:
    code = (
        "import sys; from services.beteiligte import mapper; "
        "print(','.join(m for m in ('phonenumbers','pydantic','httpx') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(ROOT),
    )
    assert out.stdout.strip() == ""


def test_partial_content_never_clears_advoware_fields() -> None:
    base = advo_person()
    content = mapper.from_advo(base)
    partial = {k: v for k, v in content.items() if k not in ("emails", "phones", "title")}
    partial["birth_date"] = "1975-03-30"
    payload = mapper.to_advo_payload(partial, base)
    assert payload["kommunikation"] == base["kommunikation"] and payload["titel"] == "Dr."
    assert payload["geburtsdatum"] == "1975-03-30"


# --------------------------------------------------------------------------- entries the sync cannot read


def test_unreadable_crm_phone_entries_survive_a_phone_rewrite(caplog: pytest.LogCaptureFixture) -> None:
    """A number with an extension or a remark is not synced, and a rewrite of phoneNumberData
    after an Advoware-side change writes it back untouched (EspoCRM unlinks what is left out)."""
    current = espo_person(
        phoneNumberData=[
            espo_phone("030 1234-56 App. 7", "Office"),
            espo_phone("+49 30 1234567", primary=False),
            {**espo_phone("0171 234 nur abends", "Mobile", primary=False), "optOut": True},
        ]
    )
    assert [p["number"] for p in mapper.from_espo(current)["phones"]] == ["+49 30 1234567"]
    advo = advo_person(
        kommunikation=[{"kommKz": 1, "tlf": "030 7654321", "bemerkung": None, "online": False}]
    )
    caplog.set_level("INFO")
    patch = mapper.to_espo_patch(mapper.from_advo(advo), ["phones"], current=current, record_id="r1")
    data = patch["phoneNumberData"]
    assert [(p["phoneNumber"], p["type"], p["primary"], p["optOut"]) for p in data] == [
        ("030 7654321", "Office", False, False),
        ("030 1234-56 App. 7", "Office", True, False),  # was primary: stays primary
        ("0171 234 nur abends", "Mobile", False, True),
    ]
    kept_lines = [r.getMessage() for r in caplog.records if "cannot read" in r.getMessage()]
    assert kept_lines == ["record r1: phones entries the sync cannot read stay as typed"]
    assert "App" not in caplog.text and "abends" not in caplog.text
    # read back, the synced list is exactly what Advoware has: no change, no loop
    assert mapper.from_espo({**current, **patch})["phones"] == mapper.from_advo(advo)["phones"]


def test_unreadable_crm_email_entry_survives_and_a_readable_primary_stays_primary() -> None:
    current = espo_person(
        emailAddressData=[espo_email("J.Weiss@Example.de"), espo_email("weiss@example.de.", primary=False)]
    )
    content = mapper.from_advo(advo_person())
    warnings: list[MappingWarning] = []
    patch = mapper.to_espo_patch(content, ["emails"], current=current, warnings=warnings)
    assert [(e["emailAddress"], e["primary"]) for e in patch["emailAddressData"]] == [
        ("J.Weiss@Example.de", True),
        ("j.weiss@privat.de", False),
        ("weiss@example.de.", False),
    ]
    assert ("emails", "kept") in {(w.field, w.code) for w in warnings}
