"""The three-way merge, with a plain equality diff (the mapper's normalisation is tested
separately) so each rule is visible on its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.sync.decide import Basis, decide


def eq_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> set[str]:
    return {k for k in set(a) | set(b) if a.get(k) != b.get(k)}


BASE = {"first_name": "Anna", "last_name": "Müller", "title": None, "emails": ["a@b.de"]}


def plan(e: dict[str, Any], a: dict[str, Any], s: dict[str, Any] | None, **kw: Any):
    return decide(e, a, s, diff=eq_diff, **kw)


def test_nothing_changed_is_a_noop() -> None:
    p = plan(BASE, dict(BASE), dict(BASE))
    assert p.is_noop and not p.conflicts and p.basis is Basis.SNAPSHOT


def test_espo_change_goes_to_advoware() -> None:
    e = {**BASE, "last_name": "Meier"}
    p = plan(e, dict(BASE), dict(BASE))
    assert p.to_advo == {"last_name"} and not p.to_espo and not p.conflicts
    assert p.merged["last_name"] == "Meier"


def test_advo_change_goes_to_espocrm() -> None:
    a = {**BASE, "title": "Dr."}
    p = plan(dict(BASE), a, dict(BASE))
    assert p.to_espo == {"title"} and not p.to_advo
    assert p.merged["title"] == "Dr."


def test_different_fields_on_both_sides_keep_both() -> None:
    e = {**BASE, "last_name": "Meier"}
    a = {**BASE, "title": "Dr."}
    p = plan(e, a, dict(BASE))
    assert p.to_advo == {"last_name"} and p.to_espo == {"title"} and not p.conflicts
    assert p.merged == {**BASE, "last_name": "Meier", "title": "Dr."}


def test_same_field_both_sides_equal_value_needs_nothing() -> None:
    e = {**BASE, "last_name": "Meier"}
    p = plan(e, dict(e), dict(BASE))
    assert p.is_noop


def test_same_field_conflict_espocrm_wins_and_reports_advoware_value() -> None:
    e = {**BASE, "last_name": "Meier"}
    a = {**BASE, "last_name": "Schulz"}
    p = plan(e, a, dict(BASE))
    assert p.to_advo == {"last_name"} and not p.to_espo
    assert [(c.field, c.espo_value, c.advo_value) for c in p.conflicts] == [("last_name", "Meier", "Schulz")]
    assert p.merged["last_name"] == "Meier"


def test_no_snapshot_equal_content_needs_nothing() -> None:
    p = plan(dict(BASE), dict(BASE), None)
    assert p.is_noop and p.basis is Basis.EQUAL


def test_no_snapshot_only_advo_changed_advoware_wins() -> None:
    a = {**BASE, "title": "Dr.", "last_name": "X"}
    p = plan(dict(BASE), a, None, espo_changed_since_sync=False, advo_changed_since_sync=True)
    assert p.basis is Basis.FIRST_SYNC and p.to_espo == {"title", "last_name"} and not p.conflicts


def test_no_snapshot_only_espo_changed_espocrm_wins() -> None:
    e = {**BASE, "title": "Dr."}
    p = plan(e, dict(BASE), None, espo_changed_since_sync=True, advo_changed_since_sync=False)
    assert p.to_advo == {"title"} and not p.conflicts


def test_no_snapshot_both_changed_is_a_conflict_espocrm_wins() -> None:
    e = {**BASE, "title": "Dr."}
    a = {**BASE, "title": "Prof."}
    p = plan(e, a, None, espo_changed_since_sync=True, advo_changed_since_sync=True)
    assert p.to_advo == {"title"} and [c.advo_value for c in p.conflicts] == ["Prof."]


def test_no_snapshot_unknown_change_times_are_a_conflict() -> None:
    e = {**BASE, "title": "Dr."}
    p = plan(e, {**BASE, "title": "Prof."}, None)
    assert p.to_advo == {"title"} and len(p.conflicts) == 1


def test_snapshot_matching_neither_side_is_a_conflict_not_a_silent_pick() -> None:
    e = {**BASE, "title": "Dr."}
    a = {**BASE, "title": "Prof."}
    s = {**BASE, "title": "Mag."}
    p = plan(e, a, s)
    assert p.to_advo == {"title"} and len(p.conflicts) == 1


def test_no_snapshot_fingerprint_decides_field_by_field() -> None:
    """The fingerprint table (services/sync/fingerprint.py): each row once, in one record whose
    record-level times say "both changed" (which alone would make every field a conflict)."""
    e = {**BASE, "first_name": "Käthe", "last_name": "Meier", "emails": ["x@y.de"]}
    a = {**BASE, "title": "Dr.", "last_name": "Schulz", "emails": ["a@b.de", "c@d.de"]}
    changed = ({"first_name", "last_name"}, {"title", "last_name"})  # emails: neither (known divergence)
    p = plan(e, a, None, fields_changed=changed, espo_changed_since_sync=True, advo_changed_since_sync=True)
    assert p.basis is Basis.FINGERPRINT
    assert p.merged["first_name"] == "Käthe" and "first_name" in p.to_advo  # E changed
    assert p.merged["title"] == "Dr." and "title" in p.to_espo  # A changed
    assert [c.field for c in p.conflicts] == ["last_name"] and p.merged["last_name"] == "Meier"  # both
    assert "emails" not in p.to_advo | p.to_espo  # neither: left as the last sync left it


def test_a_fingerprint_is_not_read_beside_a_snapshot() -> None:
    a = {**BASE, "title": "Dr."}
    p = plan(dict(BASE), a, dict(BASE), fields_changed=({"title"}, set()))
    assert p.basis is Basis.SNAPSHOT and p.to_espo == {"title"}
