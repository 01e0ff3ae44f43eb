"""Input validation of a CBeteiligte write, and merging the email/phone multi-value fields.

Validated against the instance's live field definitions (sandbox/espocrm/metadata.py): unknown
and system fields are dropped silently, like EspoCRM; a bad value of a known field (an enum
value the field does not list, a text over its `maxLength`, a malformed date) is a 400 "Field
validation failure" naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox.espocrm.metadata import EntityDefs
from sandbox.espocrm.schema import (
    DATE_RE,
    DT_RE,
    EMAIL_RE,
    INT_RE,
    SYSTEM_DROPPED,
    validation_error,
)

Validator = Callable[[str, Any, EntityDefs], Any]


def validate_input(data: dict[str, Any], defs: EntityDefs) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in data.items():
        if key in SYSTEM_DROPPED or (key not in defs.fields and key not in defs.data_attrs):
            continue  # silently dropped, like EspoCRM
        clean[key] = _validator(key, defs)(key, value, defs)
    return clean


def _validator(key: str, defs: EntityDefs) -> Validator:
    if key in defs.data_attrs:
        return _validate_data
    return {
        "enum": _validate_enum,
        "datetime": _validate_datetime,
        "date": _validate_date,
        "int": _validate_int,
    }.get(defs.type_of(key) or "", _validate_varchar)


def _validate_enum(key: str, value: Any, defs: EntityDefs) -> str | None:
    if value is None:
        return None
    options = defs.options(key)
    if value == "" and "" not in options:
        return None
    if not isinstance(value, str) or value not in options:
        raise validation_error(key)
    return value


def _validate_date(key: str, value: Any, defs: EntityDefs) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not DATE_RE.match(value) or not _valid_date(value):
        raise validation_error(key)
    return value


def _validate_int(key: str, value: Any, defs: EntityDefs) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise validation_error(key)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and INT_RE.fullmatch(value.strip()):
        return int(value)
    raise validation_error(key)


def _validate_varchar(key: str, value: Any, defs: EntityDefs) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if value is not None and not isinstance(value, str):
        raise validation_error(key)
    text = value if value != "" or key in ("name",) else None
    if defs.type_of(key) == "email" and text and not EMAIL_RE.match(text):
        raise validation_error(key)
    limit = defs.max_length(key)
    if text and limit is not None and len(text) > limit:
        raise validation_error(key, "maxLength")
    return text


def _valid_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _validate_datetime(key: str, value: Any, defs: EntityDefs) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise validation_error(key)
    m = DT_RE.match(value)
    if not m:
        raise validation_error(key)
    text = value if m.group(6) is not None else value + ":00"
    try:
        datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError as exc:
        raise validation_error(key) from exc
    return text


def _validate_data(key: str, value: Any, defs: EntityDefs) -> list[dict[str, Any]]:
    scalar = defs.data_attrs[key]
    if value is None:
        return []
    if not isinstance(value, list):
        raise validation_error(scalar)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get(scalar), str) or not entry[scalar].strip():
            raise validation_error(scalar)
        text = entry[scalar].strip()
        norm = text.lower()
        if norm in seen:
            continue
        seen.add(norm)
        out.append(_data_entry(key, scalar, entry, text, defs))
    primaries = [i for i in out if i["primary"]]
    for i in out:
        i["primary"] = False
    if out:
        (primaries[0] if primaries else out[0])["primary"] = True
        out.sort(key=lambda i: not i["primary"])  # primary first, like EspoCRM
    return out


def _data_entry(key: str, scalar: str, entry: dict[str, Any], text: str, defs: EntityDefs) -> dict[str, Any]:
    item: dict[str, Any] = {scalar: text}
    if key == "emailAddressData":
        if not EMAIL_RE.match(text):
            raise validation_error(scalar)
        item["lower"] = text.lower()
    else:
        ptype = entry.get("type") or "Mobile"
        if ptype not in defs.options(scalar):
            raise validation_error(scalar)
        item["type"] = ptype
    item["primary"] = bool(entry.get("primary", False))
    item["optOut"] = bool(entry.get("optOut", False))
    item["invalid"] = bool(entry.get("invalid", False))
    return item


def apply_multi(new: dict[str, Any], clean: dict[str, Any], scalar: str, data_attr: str) -> None:
    """Merge a write of `emailAddress`/`phoneNumber` or its `…Data` list into the record `new`."""
    if data_attr in clean:
        new[data_attr] = clean[data_attr]
        primary = next((i for i in clean[data_attr] if i["primary"]), None)
        new[scalar] = primary[scalar] if primary else None
        return
    if scalar not in clean:
        new.setdefault(data_attr, [])
        return
    value = clean[scalar]
    entries = [dict(e) for e in (new.get(data_attr) or [])]
    rest = [e for e in entries if not e["primary"] and (value is None or e[scalar].lower() != value.lower())]
    if value:
        entries = [_new_primary(scalar, value, entries), *rest]
    else:
        entries = rest
        if entries:
            entries[0]["primary"] = True
    new[data_attr] = entries
    first = next((e for e in entries if e["primary"]), None)
    new[scalar] = first[scalar] if first else None


def _new_primary(scalar: str, value: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The entry a scalar write makes primary; a phone keeps the type of the old primary."""
    if scalar == "emailAddress":
        return {scalar: value, "lower": value.lower(), "primary": True, "optOut": False, "invalid": False}
    old_primary = next((e for e in entries if e["primary"]), None)
    ptype = (old_primary or {}).get("type") or "Mobile"
    return {scalar: value, "type": ptype, "primary": True, "optOut": False, "invalid": False}
