"""The first sync of a pair without snapshot never destroys data: one test per row of the
no-snapshot table in services/sync/decide.py, with real canonical content and the mapper's diff."""

from __future__ import annotations

from typing import Any

from services.beteiligte import mapper
from services.sync.decide import Basis, Rule, decide


def person(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {name: None for name in mapper.CANONICAL_FIELDS}
    base.update({"kind": "person", "emails": [], "phones": [], "first_name": "Anna", "last_name": "Roth"})
    base.update(fields)
    return base


def mail(*addresses: str) -> list[dict[str, Any]]:
    return [{"address": a, "primary": i == 0} for i, a in enumerate(addresses)]


def phone(*numbers: str) -> list[dict[str, Any]]:
    return [{"number": n, "type": "Office", "primary": i == 0} for i, n in enumerate(numbers)]


def rules(p: Any) -> dict[str, Rule]:
    return {c.field: c.rule for c in p.changes}


def test_equal_content_needs_nothing() -> None:
    p = decide(person(title="Dr."), person(title="Dr."), None)
    assert p.is_noop and p.basis is Basis.EQUAL and not p.changes


def test_a_sparse_espocrm_record_loses_no_advoware_value() -> None:
    espo = person(birth_date="1980-01-01")
    advo = person(
        birth_date="1980-01-01",
        title="Dr.",
        salutation="Frau",
        emails=mail("anna@roth.de", "a.roth@kanzlei.de"),
        phones=phone("030 1234567"),
    )
    p = decide(espo, advo, None)  # never synced: change times unknown
    assert p.basis is Basis.FIRST_SYNC
    assert p.to_espo == {"title", "salutation", "emails", "phones"} and not p.to_advo
    assert not p.conflicts
    assert not mapper.diff(p.merged, advo)
    assert set(rules(p).values()) == {Rule.FILL_ESPO}


def test_gaps_are_filled_in_both_directions() -> None:
    p = decide(person(title="Dr."), person(birth_date="1970-02-03"), None)
    assert p.to_advo == {"title"} and p.to_espo == {"birth_date"} and not p.conflicts
    assert p.merged["title"] == "Dr." and p.merged["birth_date"] == "1970-02-03"
    assert rules(p) == {"title": Rule.FILL_ADVO, "birth_date": Rule.FILL_ESPO}


def test_contact_lists_are_merged_by_normalised_value_keeping_the_primary() -> None:
    espo = person(emails=mail("Anna@Roth.de", "anna@work.de"), phones=phone("+49 30 1234567"))
    advo = person(emails=mail("privat@roth.de", "anna@roth.de"), phones=phone("030 1234567", "0171 555"))
    p = decide(espo, advo, None)
    # Advoware already holds every phone number EspoCRM has: only EspoCRM gets the phones.
    assert p.to_advo == {"emails"} and p.to_espo == {"emails", "phones"} and not p.conflicts
    emails = p.merged["emails"]
    assert [e["address"] for e in emails] == ["Anna@Roth.de", "anna@work.de", "privat@roth.de"]
    assert [e["primary"] for e in emails] == [True, False, False]  # EspoCRM's primary stays primary
    assert [ph["number"] for ph in p.merged["phones"]] == ["+49 30 1234567", "0171 555"]
    assert rules(p) == {"emails": Rule.UNION, "phones": Rule.UNION}


def test_the_union_takes_the_primary_of_the_side_that_changed() -> None:
    espo = person(emails=mail("a@x.de"))
    advo = person(emails=mail("b@x.de"))
    p = decide(espo, advo, None, espo_changed_since_sync=False, advo_changed_since_sync=True)
    assert [(e["address"], e["primary"]) for e in p.merged["emails"]] == [("b@x.de", True), ("a@x.de", False)]


def test_differing_values_both_or_unknown_changed_espocrm_wins_and_names_the_advoware_value() -> None:
    p = decide(person(title="Dr.", last_name="Roth"), person(title="Prof.", last_name="Rot"), None)
    assert p.to_advo == {"title", "last_name"} and not p.to_espo
    assert sorted((c.field, c.espo_value, c.advo_value) for c in p.conflicts) == [
        ("last_name", "Roth", "Rot"),
        ("title", "Dr.", "Prof."),
    ]
    both = decide(person(title="Dr."), person(title="Prof."), None, espo_changed_since_sync=True,
                  advo_changed_since_sync=True)  # fmt: skip
    assert [c.advo_value for c in both.conflicts] == ["Prof."]


def test_differing_values_only_one_side_changed_that_side_wins_without_conflict() -> None:
    advo_newer = decide(
        person(title="Dr."),
        person(title="Prof."),
        None,
        espo_changed_since_sync=False,
        advo_changed_since_sync=True,
    )
    assert advo_newer.to_espo == {"title"} and not advo_newer.conflicts
    assert rules(advo_newer) == {"title": Rule.ADVO_NEWER}
    espo_newer = decide(
        person(title="Dr."),
        person(title="Prof."),
        None,
        espo_changed_since_sync=True,
        advo_changed_since_sync=False,
    )
    assert espo_newer.to_advo == {"title"} and not espo_newer.conflicts
    assert rules(espo_newer) == {"title": Rule.ESPO_NEWER}


def test_a_kind_mismatch_is_decided_as_one_field_without_mixing() -> None:
    company = {
        **person(),
        "kind": "company",
        "first_name": None,
        "last_name": None,
        "company_name": "Roth GmbH",
    }
    p = decide(person(), company, None)
    assert p.merged["kind"] == "person" and p.merged["company_name"] is None
    assert p.conflicts and not p.to_espo
    q = decide(person(), company, None, espo_changed_since_sync=False, advo_changed_since_sync=True)
    assert q.merged["kind"] == "company" and q.merged["company_name"] == "Roth GmbH" and not q.to_advo


def test_every_differing_field_is_described_with_both_values_and_the_result() -> None:
    p = decide(person(title="Dr."), person(title="Prof.", birth_date="1970-02-03"), None)
    by_field = {c.field: c for c in p.changes}
    assert (by_field["title"].espo_value, by_field["title"].advo_value, by_field["title"].value) == (
        "Dr.",
        "Prof.",
        "Dr.",
    )
    assert by_field["birth_date"].value == "1970-02-03"


def test_advoware_baseline_keeps_a_known_unapplied_field_from_counting_as_an_advoware_edit() -> None:
    # Advoware stored "Dr" although "Dr. med." was sent: the snapshot records that divergence.
    snap = person(title="Dr. med.")
    p = decide(person(title="Dr. med."), person(title="Dr"), snap, advo_baseline={"title": "Dr"})
    assert p.is_noop and not p.conflicts
    # A person's new EspoCRM value is sent again.
    again = decide(person(title="Dr. rer. nat."), person(title="Dr"), snap, advo_baseline={"title": "Dr"})
    assert again.to_advo == {"title"} and rules(again) == {"title": Rule.ESPO_CHANGED}
    # A real Advoware edit after that is still seen as one.
    q = decide(person(title="Dr. med."), person(title="Prof."), snap, advo_baseline={"title": "Dr"})
    assert q.to_espo == {"title"}
