"""Advoware kommunikation codes (kommKz) and which of them the sync owns.

ASSUMED contract (shared/docs/advoware-api.md §2.2). The sync owns the e-mail and phone kinds; the
others (Internet, EPost, beA and any code not listed) are never read into EspoCRM and are written
back to Advoware exactly as read.
"""

from __future__ import annotations

from enum import IntEnum


class KommKz(IntEnum):
    TEL_GESCH = 1
    FAX_GESCH = 2
    MOBIL = 3
    MAIL_GESCH = 4
    INTERNET = 5
    TEL_PRIVAT = 6
    FAX_PRIVAT = 7
    MAIL_PRIVAT = 8
    AUTO_TELEFON = 9
    SONSTIGE = 10
    EPOST = 11
    BEA = 12


#: kommKz that hold an e-mail address synced with EspoCRM emailAddressData.
EMAIL_KINDS: frozenset[int] = frozenset({KommKz.MAIL_GESCH, KommKz.MAIL_PRIVAT})

#: kommKz → EspoCRM phone type (phoneNumberData[].type) when read from Advoware.
PHONE_TYPE_BY_KOMMKZ: dict[int, str] = {
    KommKz.TEL_GESCH: "Office",
    KommKz.FAX_GESCH: "Fax",
    KommKz.MOBIL: "Mobile",
    KommKz.TEL_PRIVAT: "Home",
    KommKz.FAX_PRIVAT: "Fax",
    KommKz.AUTO_TELEFON: "Mobile",
    KommKz.SONSTIGE: "Other",
}
#: kommKz that hold a phone/fax number synced with EspoCRM phoneNumberData.
PHONE_KINDS: frozenset[int] = frozenset(PHONE_TYPE_BY_KOMMKZ)

#: EspoCRM phone type → kommKz written for a *new* Advoware entry. An existing entry whose kommKz
#: already maps to the same type keeps its kommKz (FaxPrivat stays FaxPrivat, AutoTelefon stays).
KOMMKZ_BY_PHONE_TYPE: dict[str, int] = {
    "Office": KommKz.TEL_GESCH,
    "Fax": KommKz.FAX_GESCH,
    "Mobile": KommKz.MOBIL,
    "Home": KommKz.TEL_PRIVAT,
    "Other": KommKz.SONSTIGE,
}
ESPO_PHONE_TYPES: tuple[str, ...] = ("Mobile", "Office", "Home", "Fax", "Other")


def default_email_kommkz(is_company: bool) -> int:
    """kommKz for a new e-mail entry: MailGesch for companies, MailPrivat for persons."""
    return int(KommKz.MAIL_GESCH if is_company else KommKz.MAIL_PRIVAT)


def as_kommkz(value: object) -> int | None:
    """Tolerant read of a kommKz (int or numeric string); None when absent or not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
