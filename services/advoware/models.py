"""Pydantic models of the (ASSUMED) Advoware Beteiligter, advoware-api.md §2.2.

* `AdvowareBeteiligter` / `Kommunikation`: tolerant read models. ``extra="allow"`` so fields this
  project does not know (and unmapped ones such as ``zusatz``) survive a read-modify-write;
  loose types (a numeric string betNr, a missing list) are accepted.
* `AdvowareBeteiligterPayload`: the strict check of what we write (PUT/POST body). Known fields must
  have the right type and shape; unknown extra keys are passed through untouched.

Python attribute names are snake_case, the JSON names camelCase (``model_dump(by_alias=True)``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from services.advoware.contract import READ_ONLY_FIELDS

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T[0-9:.+\-Z]*)?$")


class _AdvowareModel(BaseModel):
    """Advoware's JSON: camelCase names, unknown fields kept (they survive a read-modify-write)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class Kommunikation(_AdvowareModel):
    """One kommunikation entry. Lax in what we send too, on purpose: entries the sync does not own
    are sent back exactly as Advoware sent them."""

    komm_kz: int | None = None
    tlf: str | None = None
    bemerkung: str | None = None
    online: bool | None = None


class _BeteiligterFields(_AdvowareModel):
    """The fields of a Beteiligter this project knows and writes."""

    rechtsform: str | None = None
    anrede: str | None = None
    titel: str | None = None
    vorname: str | None = None
    name: str | None = None
    zusatz: str | None = None
    geburtsdatum: str | None = None
    handels_register_nummer: str | None = None
    registergericht: str | None = None
    kommunikation: list[Kommunikation] = Field(default_factory=list)


class AdvowareBeteiligter(_BeteiligterFields):
    """A Beteiligter as read from Advoware (tolerant): the known fields and the server's."""

    bet_nr: int | None = None
    geaendert_am: str | None = None
    angelegt_am: str | None = None

    @field_validator("kommunikation", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @property
    def is_company(self) -> bool:
        return bool((self.rechtsform or "").strip()) or (self.anrede or "").strip() == "Firma"

    def geaendert_am_utc(self, tz: ZoneInfo) -> datetime | None:
        """`geaendertAm` (local, no offset) as an aware UTC datetime."""
        from services.advoware.timezone import local_to_utc

        return local_to_utc(self.geaendert_am, tz) if self.geaendert_am else None


class AdvowareBeteiligterPayload(_BeteiligterFields):
    """What we send: strict on the known fields, unknown extras passed through."""

    model_config = ConfigDict(strict=True)

    name: str = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value

    @field_validator("geburtsdatum")
    @classmethod
    def _date_shape(cls, value: str | None) -> str | None:
        if value is not None and value != "" and not _DATE.match(value):
            raise ValueError("geburtsdatum must be YYYY-MM-DD")
        return value


def validate_payload(payload: dict[str, Any]) -> None:
    """Raise ``ValueError`` (pydantic's ValidationError is one) if ``payload`` is not writable."""
    for key in READ_ONLY_FIELDS:
        if key in payload:
            raise ValueError(f"{key} is read-only and must not be sent")
    AdvowareBeteiligterPayload.model_validate(payload)
