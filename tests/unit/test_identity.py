"""The identity rule: its table (`identity.RULE`, shown in docs/backfill.md) is the test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.beteiligte import mapper
from services.beteiligte.identity import (
    RULE,
    Case,
    Identity,
    Strength,
    compare,
    identity_of_advo,
    identity_of_content,
    identity_of_espo,
    lookup_keys,
    render_rule_table,
)
from services.beteiligte.normalize import (
    name_key,
    register_court_key,
    register_number_compare,
    register_number_key,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "backfill.md"


@pytest.mark.parametrize("case", RULE, ids=lambda c: c.situation)
def test_every_row_of_the_rule_holds_both_ways(case: Case) -> None:
    a, b = identity_of_content(case.a), identity_of_content(case.b)
    assert compare(a, b).strength is case.strength
    assert compare(b, a).strength is case.strength  # symmetric
    if case.strength is not Strength.NONE:
        assert set(lookup_keys(a)) & set(lookup_keys(b)), "a match must share a lookup key"


def test_docs_backfill_shows_the_rule_table_as_in_the_code() -> None:
    doc = DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- identity-rule:start -->\n(.*?)<!-- identity-rule:end -->", doc, re.S)
    assert found, "docs/backfill.md lost its identity-rule markers"
    assert found.group(1) == render_rule_table(), "regenerate the table with render_rule_table()"


def test_identity_keys_come_from_the_sync_comparison_forms() -> None:
    # The case the old backfill folding disagreed on: one key for all spellings, yet the sync
    # still sees the court letter as a change worth writing.
    assert register_number_key("HRB 12345 B") == register_number_key("hrb 12.345") == "HRB12345"
    assert register_number_compare("HRB 12345 B") != register_number_compare("HRB 12345")
    assert register_number_key("HRA 77") != register_number_key("HRB 77")
    assert register_court_key("AG München") == register_court_key("Amtsgericht Muenchen") == "muenchen"
    assert name_key("Mu\u0308ller") == name_key("MÜLLER") == name_key("Mueller") != name_key("Muller")


def test_espocrm_and_advoware_records_of_one_party_have_one_identity() -> None:
    espo = {
        "id": "e1",
        "beteiligterTyp": "Firma",
        "name": "Isar Software GmbH",
        "rechtsform": "GmbH",
        "handelsregisterNummer": "HRB 12345 B",
        "registergericht": "AG Charlottenburg",
    }
    advo = {
        "betNr": 7,
        "rechtsform": "GmbH",
        "anrede": "Firma",
        "name": "Isar Software",
        "handelsRegisterNummer": "HRB12345",
        "registergericht": "Amtsgericht Charlottenburg",
        "kommunikation": [],
    }
    assert identity_of_espo(espo) == identity_of_advo(advo)
    assert identity_of_content(mapper.from_espo(espo)) == identity_of_espo(espo)
    m = compare(identity_of_espo(espo), identity_of_advo(advo))
    assert m.strength is Strength.STRONG and m.rule == "company: name + register entry"


def test_identity_round_trips_through_json_for_the_index() -> None:
    ident = identity_of_content(RULE[2].a)
    assert ident.contacts and Identity.from_json(ident.to_json()) == ident


def test_records_without_a_name_have_no_lookup_key_and_match_nothing() -> None:
    empty = identity_of_content({"kind": "person", "first_name": None, "last_name": " "})
    assert lookup_keys(empty) == [] and not compare(empty, empty)
