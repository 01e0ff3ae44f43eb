"""CBeteiligte (EspoCRM) ⇄ Beteiligter (Advoware): the pure, typed translation.

Both records are read into one canonical `SyncedContent` (fields listed in `fieldmap.FIELD_MAP`);
comparison, hashing and writing work on that. The comparison form makes formatting-only
differences equal ("+49 30 1234567" = "030 1234567", "GmbH & Co KG" = "GmbH & Co. KG",
"Mr." = "Herr", trailing spaces), and writers keep the target's spelling wherever the values
compare equal, so nothing a person typed is rewritten for formatting alone.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from services.advoware.contract import READ_ONLY_FIELDS
from services.beteiligte import contacts
from services.beteiligte.common import (
    COMPANY,
    PERSON,
    Kind,
    MappingError,
    MappingWarning,
    SyncedContent,
    log,
)
from services.beteiligte.converters import WriteContext, kind_from_advo, kind_from_espo
from services.beteiligte.fieldmap import (
    CANONICAL_FIELDS,
    FIELD_MAP,
    FIELDS,
    KIND_DEPENDENT,
    Direction,
    FieldSpec,
)
from services.beteiligte.normalize import ANREDE_FIRMA

__all__ = [
    "CANONICAL_FIELDS",
    "MappingError",
    "MappingWarning",
    "SyncedContent",
    "comparison_form",
    "content_hash",
    "describe",
    "diff",
    "field_prints",
    "from_advo",
    "from_espo",
    "get_changed_fields",
    "to_advo_payload",
    "to_espo_patch",
]

# --------------------------------------------------------------------------- reading


def from_espo(record: Mapping[str, Any], *, warnings: list[MappingWarning] | None = None) -> SyncedContent:
    """Canonical content of an EspoCRM CBeteiligte (pass the full ``GET /{id}`` record: lists lack
    ``emailAddressData``/``phoneNumberData``)."""
    kind = kind_from_espo(record, None, warnings)
    return _canonical(kind, lambda spec: spec.converter.read_espo(record, kind, warnings))


def from_advo(record: Mapping[str, Any], *, warnings: list[MappingWarning] | None = None) -> SyncedContent:
    """Canonical content of an Advoware Beteiligter (as returned by GET/list)."""
    kind = kind_from_advo(record, None, warnings)
    return _canonical(kind, lambda spec: spec.converter.read_advo(record, kind, warnings))


def _canonical(kind: Kind, read: Callable[[FieldSpec], Any]) -> SyncedContent:
    """Every mapped field read with `read` (a converter's reader, None for the other kind); a
    field that does not apply to `kind` is its empty value."""
    content: SyncedContent = {"kind": kind}
    for spec in FIELD_MAP:
        if spec.canonical == "kind":
            continue
        value = read(spec)
        if not spec.applies(kind):
            value = None
        content[spec.canonical] = spec.empty if value is None else value
    return content


# --------------------------------------------------------------------------- comparing


def _kind(content: Mapping[str, Any]) -> Kind:
    return COMPANY if content.get("kind") == COMPANY else PERSON


def comparison_form(content: Mapping[str, Any]) -> dict[str, Any]:
    """Field → comparison value; equal forms mean "no change". Missing fields count as empty."""
    kind = _kind(content)
    form: dict[str, Any] = {}
    for spec in FIELD_MAP:
        value = content.get(spec.canonical) if spec.applies(kind) or spec.canonical == "kind" else None
        form[spec.canonical] = spec.compare(spec.empty if value is None else value)
    return form


def diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> set[str]:
    """Canonical fields whose values differ after normalisation (formatting-only is no change)."""
    fa, fb = comparison_form(a), comparison_form(b)
    return {name for name in CANONICAL_FIELDS if fa[name] != fb[name]}


def content_hash(content: Mapping[str, Any]) -> str:
    """sha256 (hex) of the comparison form: stable across processes, key order and formatting."""
    blob = json.dumps(comparison_form(content), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def field_prints(content: Mapping[str, Any]) -> dict[str, str]:
    """Field -> a short hash (12 hex) of its comparison form: equal prints mean "no change", as
    `diff` decides it. No value can be read back from a print (services/sync/fingerprint.py)."""
    form = comparison_form(content)
    return {
        name: hashlib.sha256(
            json.dumps(form[name], sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        ).hexdigest()[:12]
        for name in CANONICAL_FIELDS
    }


def get_changed_fields(espo: Mapping[str, Any], advo: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Raw EspoCRM record and raw Advoware record → {field: (espo value, advo value)} for the
    fields that differ in canonical form."""
    e, a = from_espo(espo), from_advo(advo)
    return {name: (e.get(name), a.get(name)) for name in CANONICAL_FIELDS if name in diff(e, a)}


def describe(field: str, value: Any) -> str:
    """Short human text for notifications, e.g. ``"emails: a@b.de, c@d.de"``."""
    return f"{field}: {describe_value(field, value)}"


def describe_value(field: str, value: Any) -> str:
    """A canonical value as staff read it, e.g. ``"a@b.de, c@d.de"``; ``"(leer)"`` when empty."""
    if field == "emails":
        shown = ", ".join(str(e.get("address")) for e in value or [] if isinstance(e, Mapping))
    elif field == "phones":
        shown = ", ".join(
            f"{p.get('number')} ({p.get('type')})" for p in value or [] if isinstance(p, Mapping)
        )
    elif field == "kind":
        shown = {"person": "Person", "company": "Firma"}.get(str(value), str(value))
    else:
        shown = "" if value is None else str(value)
    shown = shown or "(leer)"
    if len(shown) > 200:
        shown = shown[:199] + "…"
    return shown


# --------------------------------------------------------------------------- writing: EspoCRM


def to_espo_patch(
    content: Mapping[str, Any],
    fields: Iterable[str],
    *,
    current: Mapping[str, Any] | None = None,
    warnings: list[MappingWarning] | None = None,
    record_id: str | None = None,
) -> dict[str, Any]:
    """EspoCRM attributes to write for exactly ``fields`` (canonical names).

    * ``emails`` / ``phones`` produce the full ``emailAddressData`` / ``phoneNumberData`` arrays
      (EspoCRM replaces the whole set). Pass ``current`` (the EspoCRM record as read) so entries that
      stay keep their spelling and their ``optOut`` / ``invalid`` flags; without it they are reset.
      Entries of ``current`` the sync cannot read (an extension, a remark) are written back
      untouched; each such rewrite is logged once, by ``record_id`` and field, never the value.
    * ``first_name`` / ``last_name`` also rewrite the display ``name``; ``kind`` writes every name
      field, salutation and legal form.
    * An unknown legal form is written as "Sonstige" (Advoware keeps the original, the two compare
      equal); an unknown salutation is not representable and written empty. Both are reported.

    Raises `MappingError` when the result would be refused by EspoCRM (enum, date, empty name).
    """
    requested = set(fields)
    wanted = requested & set(FIELDS)
    unknown = requested - wanted
    if unknown:
        raise MappingError(",".join(sorted(unknown)), "not a canonical field")
    if "kind" in wanted:
        wanted.update(KIND_DEPENDENT)
    if wanted & {"first_name", "last_name"}:
        wanted.update({"first_name", "last_name"})
    kind = _kind(content)
    notes: list[MappingWarning] = []
    ctx = WriteContext(content=dict(content), kind=kind, current=current, warnings=notes)
    patch: dict[str, Any] = {}
    for spec in FIELD_MAP:
        if spec.canonical not in wanted or spec.direction in (Direction.TO_ADVO, Direction.NONE):
            continue
        value = content.get(spec.canonical) if spec.applies(kind) else None
        patch.update(spec.converter.write_espo(spec.empty if value is None else value, ctx))
    for note in notes:
        if note.code == "kept":
            log.info("record %s: %s entries the sync cannot read stay as typed", record_id, note.field)
    if warnings is not None:
        warnings.extend(notes)
    if "name" in patch and not patch["name"]:
        raise MappingError(
            "last_name" if kind == PERSON else "company_name", "EspoCRM name must not be empty"
        )
    _validate_espo(patch)
    return patch


def _validate_espo(patch: dict[str, Any]) -> None:
    from pydantic import ValidationError

    from services.beteiligte.models import validate_patch

    try:
        validate_patch(patch)
    except ValidationError as exc:
        where = ",".join(sorted({str(err["loc"][0]) for err in exc.errors() if err["loc"]})) or "patch"
        raise MappingError(where, "invalid EspoCRM value") from None


# --------------------------------------------------------------------------- writing: Advoware


def to_advo_payload(
    content: Mapping[str, Any],
    base: Mapping[str, Any] | None,
    *,
    warnings: list[MappingWarning] | None = None,
) -> dict[str, Any]:
    """Full Advoware PUT/POST body.

    ``base`` is the record as read from Advoware (None for a create). Every field not in the field
    map (``zusatz``, unknown keys) is sent back exactly as read; read-only fields are removed.
    A synced field whose value compares equal to the base value keeps the base spelling (a field
    missing from ``content`` is left as in ``base``, never cleared); the
    kommunikation entries the sync does not own (Internet, EPost, beA, ...) stay as read, in place.

    Raises `MappingError` when the body would be invalid (empty ``name``, bad date, ...).
    """
    payload: dict[str, Any] = copy.deepcopy(dict(base)) if base is not None else {}
    for key in READ_ONLY_FIELDS:  # the server owns them: removed from every payload
        payload.pop(key, None)
    kind = _kind(content)
    base_content = from_advo(base) if base is not None else None
    same_kind = base_content is not None and base_content["kind"] == kind
    base_form = comparison_form(base_content) if base_content is not None else None
    form = comparison_form(content)
    ctx = WriteContext(content=dict(content), kind=kind, current=base, warnings=warnings)

    unchanged: set[str] = set()
    for spec in FIELD_MAP:
        if spec.direction in (Direction.TO_ESPO, Direction.NONE):
            unchanged.add(spec.canonical)
            continue
        if same_kind and base_form is not None and base_form[spec.canonical] == form[spec.canonical]:
            unchanged.add(spec.canonical)  # keep what Advoware has, spelling included
            continue
        if same_kind and spec.canonical not in content:
            unchanged.add(spec.canonical)  # a partial content never clears what it does not mention
            continue
        value = content.get(spec.canonical) if spec.applies(kind) else None
        payload.update(spec.converter.write_advo(spec.empty if value is None else value, ctx))

    base_items = list(base.get("kommunikation") or []) if base is not None else []
    if base is None or not ({"emails", "phones"} <= unchanged) or "kommunikation" not in payload:
        payload["kommunikation"] = contacts.merge_kommunikation(
            copy.deepcopy(base_items),
            None if "emails" in unchanged else content.get("emails") or [],
            None if "phones" in unchanged else content.get("phones") or [],
            is_company=kind == COMPANY,
        )
    _keep_kind(payload, kind)
    _validate_advo(payload, kind)
    return payload


def _keep_kind(payload: dict[str, Any], kind: Kind) -> None:
    """Make sure the body reads back as ``kind`` (a company without Rechtsform needs anrede "Firma";
    a kept base value must not turn a person into a company)."""
    if kind_from_advo(payload) == kind:
        return
    if kind == COMPANY:
        payload["anrede"] = ANREDE_FIRMA
    else:
        payload["rechtsform"] = None
        if kind_from_advo(payload) != PERSON:
            payload["anrede"] = None


def _validate_advo(payload: dict[str, Any], kind: Kind) -> None:
    from pydantic import ValidationError

    from services.advoware.models import validate_payload

    name = payload.get("name")
    if not isinstance(name, str) or not name.strip():
        raise MappingError(
            "last_name" if kind == PERSON else "company_name", "Advoware name must not be empty"
        )
    try:
        validate_payload(payload)
    except ValidationError as exc:
        where = ",".join(sorted({str(err["loc"][0]) for err in exc.errors() if err["loc"]})) or "payload"
        raise MappingError(where, "invalid Advoware value") from None
