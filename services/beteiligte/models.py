"""Pydantic models of the EspoCRM CBeteiligte record (project schema).

* `EspoBeteiligte`: tolerant read model, ``extra="allow"`` (the server sends many system fields).
* `EspoBeteiligtePatch`: the strict check of what the mapper writes: enums, date format,
  contact arrays; ``extra="forbid"`` so a typo in an attribute name fails in tests, not in EspoCRM.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from services.beteiligte.normalize import ESPO_RECHTSFORMEN, ESPO_SALUTATIONS, is_email

EspoPhoneType = Literal["Mobile", "Office", "Home", "Fax", "Other"]
#: The enum attributes the mapper writes, with their values.
_ENUMS: dict[str, tuple[str, ...]] = {"salutationName": ESPO_SALUTATIONS, "rechtsform": ESPO_RECHTSFORMEN}


class _EspoContactEntry(BaseModel):
    """The flags every entry of ``emailAddressData`` / ``phoneNumberData`` has."""

    model_config = ConfigDict(extra="allow")

    primary: bool = False
    optOut: bool = False
    invalid: bool = False


class EspoEmailAddress(_EspoContactEntry):
    emailAddress: str | None = None
    lower: str | None = None


class EspoPhoneNumber(_EspoContactEntry):
    phoneNumber: str | None = None
    type: str | None = None


class EspoBeteiligte(BaseModel):
    """A CBeteiligte as read from EspoCRM (tolerant)."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    name: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    salutationName: str | None = None
    beteiligterTyp: str | None = None
    titel: str | None = None
    geburtsdatum: str | None = None
    rechtsform: str | None = None
    handelsregisterNummer: str | None = None
    registergericht: str | None = None
    emailAddress: str | None = None
    emailAddressData: list[EspoEmailAddress] | None = None
    phoneNumber: str | None = None
    phoneNumberData: list[EspoPhoneNumber] | None = None
    betnr: int | None = None
    syncStatus: str | None = None
    advowareLastSync: str | None = None
    advowareDeletedAt: str | None = None
    syncErrorMessage: str | None = None
    syncRetryCount: int | None = None
    syncFingerprint: str | None = None
    createdAt: str | None = None
    modifiedAt: str | None = None


_ESPO_EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _ContactEntryOut(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    primary: bool
    optOut: bool
    invalid: bool


class _EmailOut(_ContactEntryOut):
    emailAddress: str
    lower: str

    @field_validator("emailAddress")
    @classmethod
    def _valid(cls, value: str) -> str:
        # Synced values always pass `is_email` (the readers drop the rest); an entry EspoCRM
        # already holds that `is_email` cannot read is written back as it is, so EspoCRM's own
        # shape (one @, no spaces, a dot in the domain) is what is refused here.
        if not (is_email(value) or _ESPO_EMAIL_SHAPE.match(value)):
            raise ValueError("not an e-mail address")
        return value


class _PhoneOut(_ContactEntryOut):
    phoneNumber: str = Field(min_length=1)
    type: EspoPhoneType


class EspoBeteiligtePatch(BaseModel):
    """Attributes the mapper may write to CBeteiligte (all optional: a patch)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, min_length=1)
    firstName: str | None = None
    lastName: str | None = None
    salutationName: str | None = None
    beteiligterTyp: Literal["Person", "Firma"] | None = None
    titel: str | None = None
    geburtsdatum: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    rechtsform: str | None = None
    handelsregisterNummer: str | None = None
    registergericht: str | None = None
    emailAddressData: list[_EmailOut] | None = None
    phoneNumberData: list[_PhoneOut] | None = None

    @field_validator(*_ENUMS)
    @classmethod
    def _enum(cls, value: str | None, info: ValidationInfo) -> str | None:
        name = str(info.field_name)  # always set for a field validator
        if value is not None and value not in _ENUMS[name]:
            raise ValueError(f"not a {name} enum value")
        return value

    @field_validator("emailAddressData", "phoneNumberData")
    @classmethod
    def _one_primary(cls, value: list[Any] | None) -> list[Any] | None:
        if value and sum(1 for item in value if item.primary) != 1:
            raise ValueError("exactly one entry must be primary")
        return value


def validate_patch(patch: dict[str, Any]) -> None:
    """Raise ``ValueError`` (pydantic's ValidationError is one) if ``patch`` is not writable."""
    EspoBeteiligtePatch.model_validate(patch)
