"""The converters of the field map: how each synced field is read from and written to an EspoCRM
and an Advoware record, and how two values are compared (services/beteiligte/fieldmap.py lists
them per field)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from services.beteiligte import contacts
from services.beteiligte.common import (
    COMPANY,
    PERSON,
    Kind,
    MappingError,
    MappingWarning,
    SyncedContent,
    warn,
)
from services.beteiligte.normalize import (
    ANREDE_FIRMA,
    NormalizedValue,
    normalize_rechtsform,
    normalize_salutation,
    parse_date,
    rechtsform_compare,
    rechtsform_to_espo,
    register_court_compare,
    register_number_compare,
    salutation_compare,
    salutation_to_anrede,
    salutation_to_espo,
    text,
)

Warnings = list[MappingWarning] | None
Record = Mapping[str, Any]


@dataclass
class WriteContext:
    """What a writer may look at besides its own value."""

    content: SyncedContent
    kind: Kind
    current: Record | None = None  # the target record as read (EspoCRM record / Advoware base)
    warnings: Warnings = None


@dataclass(frozen=True)
class Converter:
    summary: str  # one line for the docs
    read_espo: Callable[[Record, Kind, Warnings], Any]
    read_advo: Callable[[Record, Kind, Warnings], Any]
    write_espo: Callable[[Any, WriteContext], dict[str, Any]]
    write_advo: Callable[[Any, WriteContext], dict[str, Any]]
    compare: Callable[[Any], Any] = text


# --------------------------------------------------------------------------- kind


def kind_from_espo(record: Record, _kind: Kind | None = None, warnings: Warnings = None) -> Kind:
    typ = text(record.get("beteiligterTyp"))
    if typ == "Firma":
        return COMPANY
    if typ == "Person":
        return PERSON
    if typ is not None:
        warn(warnings, "kind", "unknown_value", typ)
    return COMPANY if text(record.get("rechtsform")) else PERSON


def kind_from_advo(record: Record, _kind: Kind | None = None, warnings: Warnings = None) -> Kind:
    if text(record.get("rechtsform")):
        return COMPANY
    anrede = normalize_salutation(record.get("anrede"))
    return COMPANY if anrede.value == ANREDE_FIRMA else PERSON


def _kind_compare(value: Any) -> Any:
    return COMPANY if value == COMPANY else PERSON


def _write_kind_espo(value: Any, ctx: WriteContext) -> dict[str, Any]:
    return {"beteiligterTyp": "Firma" if value == COMPANY else "Person"}


def _write_kind_advo(value: Any, ctx: WriteContext) -> dict[str, Any]:
    # Spelled by the salutation (anrede "Firma") and legal_form (rechtsform) writers.
    return {}


KIND = Converter(
    summary='beteiligterTyp "Firma"/"Person"; in Advoware a company has a rechtsform or anrede "Firma" '
    "(written for companies), a person neither",
    read_espo=kind_from_espo,
    read_advo=kind_from_advo,
    write_espo=_write_kind_espo,
    write_advo=_write_kind_advo,
    compare=_kind_compare,
)


# --------------------------------------------------------------------------- enum-like fields


def _enum_reader(
    attr: str,
    field: str,
    normalize: Callable[[Any], NormalizedValue],
    kind: Kind,
    *,
    not_a_value: str | None = None,
    warn_ignored: bool = False,
) -> Callable[[Record, Kind, Warnings], Any]:
    """Reader of an enum-like field that only records of ``kind`` have: the canonical value, or an
    unknown one verbatim (warned ``unknown_value``). None on a record of the other kind (a value
    there warned ``ignored`` if ``warn_ignored``) and for ``not_a_value`` (the anrede "Firma" marks
    a company, it is no salutation)."""

    def read(record: Record, record_kind: Kind, warnings: Warnings) -> Any:
        normalized = normalize(record.get(attr))
        if record_kind != kind:
            if warn_ignored and normalized.value is not None:
                warn(warnings, field, "ignored", normalized.value)
            return None
        if not_a_value is not None and normalized.value == not_a_value:
            return None
        if not normalized.known:
            warn(warnings, field, "unknown_value", normalized.value)
        return normalized.value

    return read


def _enum_espo_writer(
    attr: str, field: str, to_espo: Callable[[Any], tuple[str, bool]], kind: Kind
) -> Callable[[Any, WriteContext], dict[str, Any]]:
    """Writer of an EspoCRM enum that only records of ``kind`` have (``""`` on the other kind);
    a value the enum cannot hold is written as ``to_espo`` says and warned ``not_representable``."""

    def write(value: Any, ctx: WriteContext) -> dict[str, Any]:
        if ctx.kind != kind:
            return {attr: ""}
        espo, exact = to_espo(value)
        if not exact:
            warn(ctx.warnings, field, "not_representable", value)
        return {attr: espo}

    return write


# --------------------------------------------------------------------------- salutation


def _read_salutation(attr: str) -> Callable[[Record, Kind, Warnings], Any]:
    return _enum_reader(attr, "salutation", normalize_salutation, PERSON, not_a_value=ANREDE_FIRMA)


def _write_salutation_advo(value: Any, ctx: WriteContext) -> dict[str, Any]:
    if ctx.kind == COMPANY:
        return {"anrede": ANREDE_FIRMA}
    return {"anrede": salutation_to_anrede(value)}


SALUTATION = Converter(
    summary="Mr. ⇄ Herr, Mrs./Ms. ⇄ Frau (new values written as Mrs.), Mx. ⇄ Divers; unknown Advoware "
    "anrede kept in Advoware, compares as empty",
    read_espo=_read_salutation("salutationName"),
    read_advo=_read_salutation("anrede"),
    write_espo=_enum_espo_writer("salutationName", "salutation", salutation_to_espo, PERSON),
    write_advo=_write_salutation_advo,
    compare=salutation_compare,
)


# --------------------------------------------------------------------------- plain text fields


def _plain(espo_attr: str, advo_field: str, summary: str, compare: Callable[[Any], Any] = text) -> Converter:
    return Converter(
        summary=summary,
        read_espo=lambda record, kind, warnings: text(record.get(espo_attr)),
        read_advo=lambda record, kind, warnings: text(record.get(advo_field)),
        write_espo=lambda value, ctx: {espo_attr: text(value)},
        write_advo=lambda value, ctx: {advo_field: text(value)},
        compare=compare,
    )


TITLE = _plain("titel", "titel", "text (NFC, whitespace collapsed)")
REGISTER_NUMBER = _plain(
    "handelsregisterNummer",
    "handelsRegisterNummer",
    'text; compared without spaces/dots, case-insensitive ("HRB 123" = "HRB123")',
    register_number_compare,
)
REGISTER_COURT = _plain(
    "registergericht",
    "registergericht",
    'text; compared case-insensitively, "AG " = "Amtsgericht "',
    register_court_compare,
)


# --------------------------------------------------------------------------- names


def _read_first_espo(record: Record, kind: Kind, warnings: Warnings) -> Any:
    return text(record.get("firstName")) if kind == PERSON else None


def _read_last_espo(record: Record, kind: Kind, warnings: Warnings) -> Any:
    if kind != PERSON:
        return None
    last = text(record.get("lastName"))
    if last is None and text(record.get("firstName")) is None:
        # A person saved with only the display name: take it as the surname.
        last = text(record.get("name"))
    return last


def _read_company_espo(record: Record, kind: Kind, warnings: Warnings) -> Any:
    if kind != COMPANY:
        return None
    name = text(record.get("name"))
    if name is None:
        name = text(" ".join(filter(None, (text(record.get("firstName")), text(record.get("lastName"))))))
    return name


def display_name(first: Any, last: Any) -> str | None:
    """EspoCRM ``name`` of a person: "firstName lastName"."""
    return text(" ".join(filter(None, (text(first), text(last)))))


def _write_person_names_espo(value: Any, ctx: WriteContext) -> dict[str, Any]:
    if ctx.kind != PERSON:
        return {"firstName": None, "lastName": None}
    first, last = text(ctx.content.get("first_name")), text(ctx.content.get("last_name"))
    return {"firstName": first, "lastName": last, "name": display_name(first, last)}


def _write_company_espo(value: Any, ctx: WriteContext) -> dict[str, Any]:
    return {"name": text(value)} if ctx.kind == COMPANY else {}


FIRST_NAME = Converter(
    summary="text; persons only (EspoCRM name = first + last is rewritten with it)",
    read_espo=_read_first_espo,
    read_advo=lambda record, kind, warnings: text(record.get("vorname")) if kind == PERSON else None,
    write_espo=_write_person_names_espo,
    write_advo=lambda value, ctx: {"vorname": text(value) if ctx.kind == PERSON else None},
)
LAST_NAME = Converter(
    summary="text; persons only (EspoCRM name = first + last is rewritten with it)",
    read_espo=_read_last_espo,
    read_advo=lambda record, kind, warnings: text(record.get("name")) if kind == PERSON else None,
    write_espo=_write_person_names_espo,
    write_advo=lambda value, ctx: {"name": text(value)} if ctx.kind == PERSON else {},
)
COMPANY_NAME = Converter(
    summary="text; companies only",
    read_espo=_read_company_espo,
    read_advo=lambda record, kind, warnings: text(record.get("name")) if kind == COMPANY else None,
    write_espo=_write_company_espo,
    write_advo=lambda value, ctx: {"name": text(value)} if ctx.kind == COMPANY else {},
)


# --------------------------------------------------------------------------- legal form


_read_legal_form = _enum_reader("rechtsform", "legal_form", normalize_rechtsform, COMPANY, warn_ignored=True)


LEGAL_FORM = Converter(
    summary='canonical Rechtsform ("GmbH & Co KG" → "GmbH & Co. KG"); companies only; an unknown Advoware '
    'value is kept in Advoware, shown as "Sonstige" in EspoCRM and compares equal to it',
    read_espo=_read_legal_form,
    read_advo=_read_legal_form,
    write_espo=_enum_espo_writer("rechtsform", "legal_form", rechtsform_to_espo, COMPANY),
    write_advo=lambda value, ctx: {"rechtsform": text(value) if ctx.kind == COMPANY else None},
    compare=rechtsform_compare,
)


# --------------------------------------------------------------------------- birth date


def _read_date(attr: str) -> Callable[[Record, Kind, Warnings], Any]:
    def read(record: Record, kind: Kind, warnings: Warnings) -> Any:
        try:
            return parse_date(record.get(attr))
        except ValueError:
            warn(warnings, "birth_date", "invalid", record.get(attr))
            return None

    return read


def _date_compare(value: Any) -> Any:
    try:
        return parse_date(value)
    except ValueError:
        return None


def _date_out(value: Any) -> str | None:
    try:
        return parse_date(value)
    except ValueError:
        raise MappingError("birth_date", "not a valid date") from None


BIRTH_DATE = Converter(
    summary="YYYY-MM-DD, taken as written (never converted between time zones)",
    read_espo=_read_date("geburtsdatum"),
    read_advo=_read_date("geburtsdatum"),
    write_espo=lambda value, ctx: {"geburtsdatum": _date_out(value)},
    write_advo=lambda value, ctx: {"geburtsdatum": _date_out(value)},
    compare=_date_compare,
)


# --------------------------------------------------------------------------- contacts


def _contact_list(
    summary: str,
    *,
    from_espo: Callable[[Record, Warnings], Any],
    from_advo: Callable[[Record, Warnings], Any],
    espo_attr: str,
    to_espo: Callable[[Any, Record | None, Warnings], Any],
    compare: Callable[[Any], Any],
) -> Converter:
    """A contact list: one list attribute in EspoCRM; in Advoware entries of ``kommunikation``,
    which the mapper merges from all lists at once (so the Advoware writer adds nothing here)."""
    return Converter(
        summary=summary,
        read_espo=lambda record, kind, warnings: from_espo(record, warnings),
        read_advo=lambda record, kind, warnings: from_advo(record, warnings),
        write_espo=lambda value, ctx: {espo_attr: to_espo(value, ctx.current, ctx.warnings)},
        write_advo=lambda value, ctx: {},
        compare=compare,
    )


EMAILS = _contact_list(
    "list, primary first; Advoware kommKz 4 MailGesch / 8 MailPrivat (new: 4 for companies, 8 for "
    "persons); compared case-insensitively",
    from_espo=contacts.emails_from_espo,
    from_advo=contacts.emails_from_advo,
    espo_attr="emailAddressData",
    to_espo=contacts.emails_to_espo,
    compare=contacts.emails_compare,
)
PHONES = _contact_list(
    "list, primary first; Mobile⇄3 (9 read as Mobile), Office⇄1, Home⇄6, Fax⇄2 (7 read as Fax), "
    "Other⇄10; compared as E.164 (region DE)",
    from_espo=contacts.phones_from_espo,
    from_advo=contacts.phones_from_advo,
    espo_attr="phoneNumberData",
    to_espo=contacts.phones_to_espo,
    compare=contacts.phones_compare,
)
