"""Contact data: EspoCRM emailAddressData / phoneNumberData ⇄ Advoware kommunikation.

Canonical form (in `SyncedContent`):

* ``emails``: ``[{"address": str, "primary": bool}, ...]``
* ``phones``: ``[{"number": str, "type": "Mobile"|"Office"|"Home"|"Fax"|"Other", "primary": bool}, ...]``

Rules:

* The primary entry is first, and is the only one with ``primary: True``. Advoware has no primary
  flag: the first synced e-mail (kommKz 4/8) and the first synced phone (kommKz 1,2,3,6,7,9,10) in
  list order are the primary ones; the mapper writes the primary first.
* One entry per address / number: e-mails are keyed case-insensitively, phones by E.164 (region
  DE) or their digits. Duplicates are dropped from the canonical list (EspoCRM cannot hold them)
  but an Advoware duplicate of a number that stays is kept in Advoware.
* Comparison: the primary entry, then the others *as a set* (EspoCRM does not keep an order for
  non-primary entries, so their order is no change); for phones the type counts.
* Written values keep their typed spelling: an entry that matches the target's current entry by key
  keeps the target's spelling and flags (EspoCRM optOut/invalid; Advoware bemerkung/online/kommKz).
* Values that do not look like an e-mail address / phone number are not synced in either direction
  and are reported. Each side keeps them where they are: Advoware's stay in ``kommunikation`` as
  read, and when the sync rewrites EspoCRM's ``emailAddressData`` / ``phoneNumberData`` the
  entries a person typed there that the sync cannot read ("030 1234-56 App. 7", "nur abends")
  are written back untouched (spelling, type, flags; a primary one stays primary), because
  EspoCRM unlinks every entry a rewrite leaves out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from services.advoware.kommkz import (
    EMAIL_KINDS,
    ESPO_PHONE_TYPES,
    KOMMKZ_BY_PHONE_TYPE,
    PHONE_KINDS,
    PHONE_TYPE_BY_KOMMKZ,
    as_kommkz,
    default_email_kommkz,
)
from services.beteiligte.common import MappingWarning, warn
from services.beteiligte.normalize import email_key, is_email, is_phone, phone_key

Warnings = list[MappingWarning] | None

EMAIL = "email"
PHONE = "phone"


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _order(
    entries: list[dict[str, Any]], key: Callable[[dict[str, Any]], str], primary_key: str | None
) -> list[dict[str, Any]]:
    """Dedupe by key (first occurrence wins), move the primary to the front, set the flags."""
    seen: set[str] = set()
    unique: list[dict[str, Any]] = []
    for entry in entries:
        k = key(entry)
        if k not in seen:
            seen.add(k)
            unique.append(entry)
    if not unique:
        return []
    index = next((i for i, e in enumerate(unique) if key(e) == primary_key), 0)
    ordered = [unique[index], *unique[:index], *unique[index + 1 :]]
    return [{**entry, "primary": i == 0} for i, entry in enumerate(ordered)]


def _email_entry_key(entry: Mapping[str, Any]) -> str:
    return email_key(entry["address"])


def _phone_entry_key(entry: Mapping[str, Any]) -> str:
    return phone_key(entry["number"])


# --------------------------------------------------------------------------- EspoCRM → canonical


def emails_from_espo(record: Mapping[str, Any], warnings: Warnings = None) -> list[dict[str, Any]]:
    """From ``emailAddressData`` (full set, as ``GET /{id}`` returns it); without it from the scalar
    ``emailAddress`` (then only the primary is known: pass full records to the mapper)."""
    data = record.get("emailAddressData")
    raw: list[tuple[str, bool]] = []
    if isinstance(data, list):
        for item in data:
            if isinstance(item, Mapping):
                raw.append((_str(item.get("emailAddress")), bool(item.get("primary"))))
    else:
        raw.append((_str(record.get("emailAddress")), True))
    entries: list[dict[str, Any]] = []
    primary_key: str | None = None
    for address, primary in raw:
        if not address:
            continue
        if not is_email(address):
            warn(warnings, "emails", "invalid", address)
            continue
        if primary and primary_key is None:
            primary_key = email_key(address)
        entries.append({"address": address, "primary": primary})
    return _order(entries, _email_entry_key, primary_key)


def phones_from_espo(record: Mapping[str, Any], warnings: Warnings = None) -> list[dict[str, Any]]:
    data = record.get("phoneNumberData")
    raw: list[tuple[str, Any, bool]] = []
    if isinstance(data, list):
        for item in data:
            if isinstance(item, Mapping):
                raw.append((_str(item.get("phoneNumber")), item.get("type"), bool(item.get("primary"))))
    else:
        raw.append((_str(record.get("phoneNumber")), record.get("phoneNumberType") or "Other", True))
    entries: list[dict[str, Any]] = []
    primary_key: str | None = None
    for number, phone_type, primary in raw:
        if not number:
            continue
        if not is_phone(number):
            warn(warnings, "phones", "invalid", number)
            continue
        if phone_type not in ESPO_PHONE_TYPES:
            warn(warnings, "phones", "unknown_value", phone_type)
            phone_type = "Other"
        if primary and primary_key is None:
            primary_key = phone_key(number)
        entries.append({"number": number, "type": phone_type, "primary": primary})
    return _order(entries, _phone_entry_key, primary_key)


# --------------------------------------------------------------------------- Advoware → canonical


def category(item: Any) -> str | None:
    """``"email"`` / ``"phone"`` for a kommunikation entry the sync owns, else None (kept as read)."""
    if not isinstance(item, Mapping):
        return None
    kz = as_kommkz(item.get("kommKz"))
    value = _str(item.get("tlf"))
    if kz is None or not value:
        return None
    if kz in EMAIL_KINDS and is_email(value):
        return EMAIL
    if kz in PHONE_KINDS and is_phone(value):
        return PHONE
    return None


def _kommunikation(record: Mapping[str, Any]) -> list[Any]:
    items = record.get("kommunikation")
    return list(items) if isinstance(items, list) else []


def _report_skipped(items: Iterable[Any], warnings: Warnings) -> None:
    for item in items:
        if isinstance(item, Mapping) and category(item) is None and _str(item.get("tlf")):
            kz = as_kommkz(item.get("kommKz"))
            if kz in EMAIL_KINDS:
                warn(warnings, "emails", "invalid", item.get("tlf"))
            elif kz in PHONE_KINDS:
                warn(warnings, "phones", "invalid", item.get("tlf"))


def emails_from_advo(record: Mapping[str, Any], warnings: Warnings = None) -> list[dict[str, Any]]:
    items = _kommunikation(record)
    _report_skipped(items, warnings)
    entries = [{"address": _str(item["tlf"]), "primary": False} for item in items if category(item) == EMAIL]
    return _order(entries, _email_entry_key, None)


def phones_from_advo(record: Mapping[str, Any], warnings: Warnings = None) -> list[dict[str, Any]]:
    entries = [
        {
            "number": _str(item["tlf"]),
            "type": PHONE_TYPE_BY_KOMMKZ[as_kommkz(item["kommKz"]) or 0],
            "primary": False,
        }
        for item in _kommunikation(record)
        if category(item) == PHONE
    ]
    return _order(entries, _phone_entry_key, None)


# --------------------------------------------------------------------------- comparison


def emails_compare(value: Any) -> list[str]:
    keys = [email_key(e["address"]) for e in _canonical_list(value, "address")]
    return keys[:1] + sorted(set(keys[1:]) - set(keys[:1]))


def phones_compare(value: Any) -> list[list[str]]:
    pairs = [
        [phone_key(p["number"]), str(p.get("type") or "Other")] for p in _canonical_list(value, "number")
    ]
    if not pairs:
        return []
    rest = {tuple(p) for p in pairs[1:] if p[0] != pairs[0][0]}
    return [pairs[0], *(list(p) for p in sorted(rest))]


def _canonical_list(value: Any, field: str) -> list[dict[str, Any]]:
    """Primary first (tolerates a hand-built list whose primary is not first)."""
    if not isinstance(value, list):
        return []
    entries = [
        dict(e)
        for e in value
        if isinstance(e, Mapping) and isinstance(e.get(field), str) and e[field].strip()
    ]
    entries.sort(key=lambda e: not e.get("primary"))  # stable: primary first, rest in order
    return entries


# --------------------------------------------------------------------------- canonical → EspoCRM


class _EspoList(NamedTuple):
    """How EspoCRM spells one contact list: the list attribute, the value attribute of an entry,
    the canonical field and comparison key of that value, and the attributes only this kind has."""

    data_attr: str
    value_attr: str
    field: str
    key: Callable[[str], str]
    details: Callable[[Mapping[str, Any], str], dict[str, Any]]


def _email_details(entry: Mapping[str, Any], address: str) -> dict[str, Any]:
    return {"lower": address.lower()}


def _phone_details(entry: Mapping[str, Any], number: str) -> dict[str, Any]:
    return {"type": entry.get("type") if entry.get("type") in ESPO_PHONE_TYPES else "Other"}


_ESPO_EMAILS = _EspoList("emailAddressData", "emailAddress", "address", email_key, _email_details)
_ESPO_PHONES = _EspoList("phoneNumberData", "phoneNumber", "number", phone_key, _phone_details)


def emails_to_espo(
    value: Any, current: Mapping[str, Any] | None, warnings: Warnings = None
) -> list[dict[str, Any]]:
    """Full ``emailAddressData``; entries that persist keep the current spelling, optOut and invalid."""
    return _espo_data(value, current, _ESPO_EMAILS, warnings)


def phones_to_espo(
    value: Any, current: Mapping[str, Any] | None, warnings: Warnings = None
) -> list[dict[str, Any]]:
    """Full ``phoneNumberData``; entries that persist keep the current spelling, optOut and invalid."""
    return _espo_data(value, current, _ESPO_PHONES, warnings)


def _unreadable(current: Mapping[str, Any] | None, spelling: _EspoList) -> list[Mapping[str, Any]]:
    """The current EspoCRM entries the sync cannot read (not an e-mail address / phone number):
    never part of the canonical list, so a rewrite must carry them over."""
    readable = is_email if spelling.field == "address" else is_phone
    return [
        item
        for item in (current or {}).get(spelling.data_attr) or []
        if isinstance(item, Mapping) and (text := _str(item.get(spelling.value_attr))) and not readable(text)
    ]


def _espo_data(
    value: Any, current: Mapping[str, Any] | None, spelling: _EspoList, warnings: Warnings = None
) -> list[dict[str, Any]]:
    """The full EspoCRM list for a canonical list: an entry the current record has (same key)
    keeps its spelling, optOut and invalid; entries the sync cannot read stay as they are."""
    data_attr, value_attr, field, key, details = spelling
    existing: dict[str, Mapping[str, Any]] = {}
    for item in (current or {}).get(data_attr) or []:
        if isinstance(item, Mapping) and _str(item.get(value_attr)):
            existing.setdefault(key(_str(item.get(value_attr))), item)
    out = []
    for i, entry in enumerate(_canonical_list(value, field)):
        old = existing.get(key(entry[field]))
        spelled = _str(old.get(value_attr)) if old else entry[field].strip()
        out.append(
            {
                value_attr: spelled,
                **details(entry, spelled),
                "primary": i == 0,
                "optOut": bool(old.get("optOut")) if old else False,
                "invalid": bool(old.get("invalid")) if old else False,
            }
        )
    kept = _unreadable(current, spelling)
    if not kept:
        return out
    if warnings is not None:  # reported by the caller, who knows the record (never the value)
        warnings.append(MappingWarning("emails" if field == "address" else "phones", "kept"))
    keep_primary = any(item.get("primary") for item in kept)
    for entry in out:
        entry["primary"] = entry["primary"] and not keep_primary
    return out + [
        {
            value_attr: (text := _str(item.get(value_attr))),
            **details(item, text),
            "primary": bool(item.get("primary")),
            "optOut": bool(item.get("optOut")),
            "invalid": bool(item.get("invalid")),
        }
        for item in kept
    ]


# --------------------------------------------------------------------------- canonical → Advoware


def _new_entries(
    base_items: list[Any], cat: str, wanted: list[dict[str, Any]], is_company: bool
) -> list[Any]:
    """The entries of one category in the order to write: each wanted value reuses the base entry
    with the same key (its spelling, kommKz, bemerkung, online and any duplicates), new values get
    a new entry."""
    key = email_key if cat == EMAIL else phone_key
    groups: dict[str, list[Any]] = {}
    for item in base_items:
        if category(item) == cat:
            groups.setdefault(key(_str(item["tlf"])), []).append(item)
    out: list[Any] = []
    for entry in wanted:
        value = entry["address"] if cat == EMAIL else entry["number"]
        group = groups.pop(key(value), None)
        if group:
            first = dict(group[0])
            if cat == PHONE:
                wanted_type = entry.get("type") or "Other"
                if PHONE_TYPE_BY_KOMMKZ.get(as_kommkz(first.get("kommKz")) or 0) != wanted_type:
                    first["kommKz"] = int(
                        KOMMKZ_BY_PHONE_TYPE.get(wanted_type, KOMMKZ_BY_PHONE_TYPE["Other"])
                    )
            out.append(first)
            out.extend(group[1:])
            continue
        if cat == EMAIL:
            kz = default_email_kommkz(is_company)
        else:
            kz = int(KOMMKZ_BY_PHONE_TYPE.get(entry.get("type") or "Other", KOMMKZ_BY_PHONE_TYPE["Other"]))
        out.append({"kommKz": kz, "tlf": value.strip(), "bemerkung": None, "online": False})
    return out


def merge_kommunikation(
    base_items: list[Any],
    emails: Any | None,
    phones: Any | None,
    *,
    is_company: bool,
) -> list[Any]:
    """Advoware ``kommunikation`` to write.

    ``emails`` / ``phones`` None means "unchanged: keep those base entries exactly as read".
    Entries the sync does not own (Internet, EPost, beA, unknown codes, values that are not an
    e-mail/phone) stay as read and in place; owned entries fill the positions their category had,
    new ones are appended.
    """
    replacement: dict[str, list[Any]] = {}
    if emails is not None:
        replacement[EMAIL] = _new_entries(base_items, EMAIL, _canonical_list(emails, "address"), is_company)
    if phones is not None:
        replacement[PHONE] = _new_entries(base_items, PHONE, _canonical_list(phones, "number"), is_company)
    queues = {cat: iter(items) for cat, items in replacement.items()}
    out: list[Any] = []
    for item in base_items:
        cat = category(item)
        if cat is None or cat not in queues:
            out.append(item)
            continue
        nxt = next(queues[cat], None)
        if nxt is not None:
            out.append(nxt)
    for cat in (EMAIL, PHONE):
        if cat in queues:
            out.extend(queues[cat])
    return out
