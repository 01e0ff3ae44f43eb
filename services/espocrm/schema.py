"""The one definition of the EspoCRM entity `CBeteiligte`: every field the service reads or
writes, with its EspoCRM type, options and length.

Read by `python -m services.ops setup-espocrm` (creates what is missing), by the start-up check
(services/espocrm/schema_check.py compares an instance against it), by `make espocrm-extension`
(services/espocrm/extension.py), by the sandbox's EspoCRM simulator (what it serves) and by
the README's reference table (`render_markdown()`; a unit test keeps it current).

Field definitions are EspoCRM's `entityDefs` field metadata (`type`, `options`, `maxLength`,
`default`, `required`), exactly what the Field Manager API takes (shared/docs/espocrm-api.md §7).
The entity is of type `Base` (its `name` is a plain varchar: a company's name is written there,
which a `Person` entity's computed person name would not take), so every other field, the
e-mail and phone fields included, is created through the Field Manager.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.advoware.kommkz import ESPO_PHONE_TYPES
from services.beteiligte.normalize import ESPO_RECHTSFORMEN, ESPO_SALUTATIONS
from services.espocrm.fields import (
    ADVOWARE_DELETED_AT,
    ADVOWARE_LAST_SYNC,
    SYNC_ERROR_MESSAGE,
    SYNC_FINGERPRINT,
    SYNC_RETRY_COUNT,
    SYNC_STATUS,
)

#: The name given to EspoCRM's Entity Manager; EspoCRM prefixes custom entities with `C`.
ENTITY_NAME = "Beteiligte"
ENTITY = "C" + ENTITY_NAME
ENTITY_TYPE = "Base"
LABEL_SINGULAR = "Beteiligter"
LABEL_PLURAL = "Beteiligte"
#: The Webhook events the service subscribes to, one URL each (`<base>/<suffix>`).
WEBHOOK_EVENTS: tuple[str, ...] = ("create", "update", "delete")
WEBHOOK_PATH = "/vmh/webhook/beteiligte"

SYNC_STATUSES: tuple[str, ...] = (
    "pending_sync",
    "syncing",
    "clean",
    "dirty",
    "failed",
    "conflict",
    "deleted_in_advoware",
    "permanently_failed",
    "excluded",
)


@dataclass(frozen=True)
class FieldDef:
    """One field of the entity as EspoCRM's Field Manager defines it."""

    name: str
    type: str
    label: str
    note: str = ""
    options: tuple[str, ...] = ()
    max_length: int | None = None
    default: Any = None
    required: bool = False
    #: `name` comes with every `Base` entity: checked and updated, never created.
    builtin: bool = False
    #: Missing, the service still works (EspoCRM drops an undefined attribute from a write):
    #: the start-up check warns instead of failing; the setup creates it like any other.
    optional: bool = False

    def metadata(self) -> dict[str, Any]:
        """The field's `entityDefs` definition (also the Field Manager's request body, with `name`)."""
        out: dict[str, Any] = {"type": self.type}
        phone = self.type == "phone"  # a phone field's options are its number types
        if self.options:
            out["typeList" if phone else "options"] = list(self.options)
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        if self.default is not None:
            out["defaultType" if phone else "default"] = self.default
        if self.required:
            out["required"] = True
        if not self.builtin:
            out["isCustom"] = True
        return out


def _varchar(name: str, label: str, length: int, note: str = "", **kw: Any) -> FieldDef:
    return FieldDef(name, "varchar", label, note, max_length=length, **kw)


def _enum(name: str, label: str, options: tuple[str, ...], note: str = "", **kw: Any) -> FieldDef:
    return FieldDef(name, "enum", label, note, options=options, **kw)


FIELDS: tuple[FieldDef, ...] = (
    _varchar(
        "name",
        "Name",
        255,
        "Person: `firstName lastName` when not given; Firma: the company name",
        required=True,
        builtin=True,
    ),
    _enum("salutationName", "Anrede", ESPO_SALUTATIONS),
    _varchar("firstName", "Vorname", 100),
    _varchar("lastName", "Nachname", 150),
    _enum("beteiligterTyp", "Typ", ("Person", "Firma"), "default `Person`", default="Person"),
    _varchar("titel", "Titel", 100, "e.g. `Dr.`, `Prof. Dr.`"),
    FieldDef("geburtsdatum", "date", "Geburtsdatum", "`YYYY-MM-DD`"),
    _enum("rechtsform", "Rechtsform", ESPO_RECHTSFORMEN),
    _varchar("handelsregisterNummer", "Handelsregisternummer", 100, "e.g. `HRB 12345`"),
    _varchar("registergericht", "Registergericht", 150, "e.g. `Amtsgericht München`"),
    FieldDef(
        "emailAddress",
        "email",
        "E-Mail",
        "`emailAddressData`: `{emailAddress, lower, primary, optOut, invalid}`",
    ),
    FieldDef(
        "phoneNumber",
        "phone",
        "Telefon",
        "`phoneNumberData`: `{phoneNumber, type, primary, optOut, invalid}`; default type `Mobile`",
        options=ESPO_PHONE_TYPES,
        default="Mobile",
    ),
    FieldDef("betnr", "int", "Advoware betNr", "the linked Advoware party"),
    _enum(
        SYNC_STATUS,
        "Sync-Status",
        SYNC_STATUSES,
        "`excluded` is set by staff; `pending_sync` brings a record back",
        default="pending_sync",
    ),
    FieldDef(ADVOWARE_LAST_SYNC, "datetime", "Letzter Abgleich", "UTC `YYYY-MM-DD HH:MM:SS`"),
    FieldDef(ADVOWARE_DELETED_AT, "datetime", "In Advoware gelöscht am", "UTC `YYYY-MM-DD HH:MM:SS`"),
    FieldDef(SYNC_ERROR_MESSAGE, "text", "Sync-Fehler", "German text for staff, up to ~1,100 characters"),
    FieldDef(SYNC_RETRY_COUNT, "int", "Sync-Versuche", "default 0", default=0),
    FieldDef(
        SYNC_FINGERPRINT,
        "text",
        "Sync-Abgleichsstand",
        "written by the service only: a short hash per synced field as the last sync left both "
        "sides (no values; services/sync/fingerprint.py); not for layouts; without it, edits "
        "on both sides after Redis lost its data are reported as conflicts",
        optional=True,
    ),
)
FIELDS_BY_NAME: dict[str, FieldDef] = {f.name: f for f in FIELDS}


def entity_metadata() -> dict[str, Any]:
    """`scopes` and `entityDefs` of the entity as an installed extension (or the setup) leaves them."""
    return {
        "scopes": {
            "entity": True,
            "type": ENTITY_TYPE,
            "module": "Custom",
            "object": True,
            "isCustom": True,
            "tab": True,
            "acl": True,
            "stream": True,
            "customizable": True,
            "importable": True,
        },
        "entityDefs": {
            "fields": {f.name: f.metadata() for f in FIELDS},
            "optimisticConcurrencyControl": True,
            "collection": {"orderBy": "createdAt", "order": "desc"},
        },
    }


def render_markdown() -> str:
    """The README's reference table of the entity, generated from `FIELDS`."""
    lines = [
        "| Field | Type | Options / length | Notes |",
        "|---|---|---|---|",
    ]
    for f in FIELDS:
        if f.options:
            detail = ", ".join(f"`{o}`" if o else '`""`' for o in f.options)
        elif f.max_length is not None:
            detail = f"max. {f.max_length}"
        else:
            detail = ""
        lines.append(f"| `{f.name}` | {f.type} | {detail} | {f.note} |")
    lines.append(
        "| `id`, `createdAt`, `modifiedAt`, `createdById/Name`, `modifiedById/Name`, `versionNumber` "
        "| system | | read-only |"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
