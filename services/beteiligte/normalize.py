"""Normalisation tables and comparison keys.

Two kinds of functions live here:

* **tables** (Rechtsform, Anrede/salutation) turn spelling variants into one canonical value and
  report unknown values instead of replacing them (`NormalizedValue.known`);
* **comparison keys** (`text`, `email_key`, `phone_key`, ...) make formatting-only differences equal.
  They are used to *compare*; what is written keeps what the person typed.

Nothing here imports anything heavy at module import time: `phonenumbers` is imported on the
first phone number that needs parsing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date
from functools import lru_cache
from typing import Any, NamedTuple


class NormalizedValue(NamedTuple):
    """``value`` is the canonical value (or the raw value, stripped, when unknown); ``known`` says
    whether the table knew it. Empty input gives ``NormalizedValue(None, True)``."""

    value: str | None
    known: bool


# --------------------------------------------------------------------------- text


_WS = re.compile(r"\s+")


def text(value: Any) -> str | None:
    """Canonical text: NFC, whitespace collapsed to single spaces, stripped; ``""`` → ``None``.

    Non-strings (numbers from a loosely typed server) are turned into their ``str``.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        if isinstance(value, bool):
            return None
        value = str(value)
    value = _WS.sub(" ", unicodedata.normalize("NFC", value)).strip()
    return value or None


def _fold(value: str) -> str:
    """Aggressive key for table lookups: lower case, umlauts spelled out, only letters/digits/&."""
    value = unicodedata.normalize("NFC", value).casefold()
    for src, dst in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        value = value.replace(src, dst)
    value = re.sub(r"\bund\b|\+", "&", value)
    return re.sub(r"[^0-9a-z&]", "", value)


class _VariantTable:
    """Spelling variants of canonical values, looked up by a folding ``key``."""

    def __init__(self, variants: Mapping[str, tuple[str, ...]], key: Callable[[str], str]) -> None:
        self._key = key
        self._canonical = {
            key(variant): canonical for canonical, spellings in variants.items() for variant in spellings
        }

    def normalize(self, raw: Any) -> NormalizedValue:
        """`text(raw)` → its canonical value (known), or itself (unknown); empty → ``(None, True)``."""
        value = text(raw)
        if value is None:
            return NormalizedValue(None, True)
        canonical = self._canonical.get(self._key(value))
        if canonical is None:
            return NormalizedValue(value, False)
        return NormalizedValue(canonical, True)


# --------------------------------------------------------------------------- Rechtsform

#: The canonical Rechtsform values (EspoCRM enum without "", identical to Advoware's spelling).
RECHTSFORMEN: tuple[str, ...] = (
    "GmbH",
    "AG",
    "UG (haftungsbeschränkt)",
    "GmbH & Co. KG",
    "KG",
    "OHG",
    "GbR",
    "e.K.",
    "eG",
    "e.V.",
    "PartG",
    "PartG mbB",
    "Sonstige",
)
#: The EspoCRM ``rechtsform`` enum: none, or a canonical value.
ESPO_RECHTSFORMEN: tuple[str, ...] = ("", *RECHTSFORMEN)
#: What EspoCRM shows for a company whose Advoware Rechtsform is not in the table.
RECHTSFORM_OTHER = "Sonstige"

_RECHTSFORM_VARIANTS: dict[str, tuple[str, ...]] = {
    "GmbH": ("GmbH", "Gesellschaft mit beschränkter Haftung", "G.m.b.H."),
    "AG": ("AG", "Aktiengesellschaft"),
    "UG (haftungsbeschränkt)": (
        "UG (haftungsbeschränkt)",
        "UG haftungsbeschränkt",
        "UG (haftungsbeschraenkt)",
        "UG",
        "UG (hb)",
        "Unternehmergesellschaft (haftungsbeschränkt)",
        "Unternehmergesellschaft",
    ),
    "GmbH & Co. KG": ("GmbH & Co. KG", "GmbH & Co KG", "GmbH u. Co. KG", "GmbH und Co. KG", "GmbH + Co. KG"),
    "KG": ("KG", "Kommanditgesellschaft"),
    "OHG": ("OHG", "oHG", "offene Handelsgesellschaft"),
    "GbR": ("GbR", "Gesellschaft bürgerlichen Rechts", "BGB-Gesellschaft"),
    "e.K.": (
        "e.K.",
        "e. K.",
        "eK",
        "e.Kfm.",
        "e.Kfr.",
        "eingetragener Kaufmann",
        "eingetragene Kauffrau",
    ),
    "eG": ("eG", "e.G.", "eingetragene Genossenschaft"),
    "e.V.": ("e.V.", "e. V.", "eV", "eingetragener Verein"),
    "PartG": ("PartG", "Partnerschaft", "Partnerschaftsgesellschaft"),
    "PartG mbB": (
        "PartG mbB",
        "PartGmbB",
        "Partnerschaftsgesellschaft mbB",
        "Partnerschaftsgesellschaft mit beschränkter Berufshaftung",
    ),
    "Sonstige": ("Sonstige", "Sonstiges"),
}


def _rechtsform_key(value: str) -> str:
    # "u." between company forms means "und": "GmbH u. Co. KG".
    value = re.sub(r"\bu\.\s", "& ", value)
    return _fold(value)


_RECHTSFORM_TABLE = _VariantTable(_RECHTSFORM_VARIANTS, _rechtsform_key)


def normalize_rechtsform(raw: Any) -> NormalizedValue:
    """``"GmbH & Co KG"`` → ``("GmbH & Co. KG", True)``; ``"Stiftung"`` → ``("Stiftung", False)``."""
    return _RECHTSFORM_TABLE.normalize(raw)


def rechtsform_compare(value: str | None) -> str | None:
    """Comparison form: known values canonical, any unknown value equals EspoCRM's "Sonstige"
    (EspoCRM can only hold "Sonstige" for it; Advoware keeps the original spelling)."""
    normalized = normalize_rechtsform(value)
    return normalized.value if normalized.known else RECHTSFORM_OTHER


def rechtsform_to_espo(value: str | None) -> tuple[str, bool]:
    """EspoCRM enum value for a canonical Rechtsform; ``(value, exact)`` where ``exact`` is False
    when an unknown value had to be shown as "Sonstige"."""
    normalized = normalize_rechtsform(value)
    if normalized.value is None:
        return "", True
    if normalized.known:
        return normalized.value, True
    return RECHTSFORM_OTHER, False


# --------------------------------------------------------------------------- Anrede / salutation

#: Canonical salutations (Advoware's spelling).
ANREDEN: tuple[str, ...] = ("Herr", "Frau", "Divers")
#: Advoware's anrede for companies; it is the kind marker, not a salutation.
ANREDE_FIRMA = "Firma"

#: EspoCRM raw enum value → canonical. "Mrs." and "Ms." are both "Frau".
ESPO_SALUTATION_TO_ANREDE: dict[str, str] = {"Mr.": "Herr", "Mrs.": "Frau", "Ms.": "Frau", "Mx.": "Divers"}
#: Canonical → EspoCRM raw enum value written for a *new* value ("Frau" is written as "Mrs.";
#: an existing "Ms." is kept because it compares equal).
ANREDE_TO_ESPO_SALUTATION: dict[str, str] = {"Herr": "Mr.", "Frau": "Mrs.", "Divers": "Mx."}
ESPO_SALUTATIONS: tuple[str, ...] = ("", "Mr.", "Mrs.", "Ms.", "Mx.")

_SALUTATION_VARIANTS: dict[str, tuple[str, ...]] = {
    "Herr": ("Herr", "Herrn", "Hr.", "Hr", "Mr.", "Mr", "Mister"),
    "Frau": ("Frau", "Fr.", "Fr", "Mrs.", "Mrs", "Ms.", "Ms", "Miss"),
    "Divers": ("Divers", "Div.", "Mx.", "Mx", "Neutral"),
    ANREDE_FIRMA: ("Firma", "Fa.", "Fa"),
}
_SALUTATION_TABLE = _VariantTable(_SALUTATION_VARIANTS, _fold)


def normalize_salutation(raw: Any) -> NormalizedValue:
    """Either side's value → canonical German salutation.

    ``"Mr."`` / ``"Herrn"`` → ``("Herr", True)``; ``"Firma"`` → ``("Firma", True)`` (the caller
    treats it as the company marker); ``"Eheleute"`` → ``("Eheleute", False)``; empty → ``(None, True)``.
    """
    return _SALUTATION_TABLE.normalize(raw)


def salutation_compare(value: str | None) -> str | None:
    """Comparison form: Herr/Frau/Divers, anything EspoCRM cannot hold compares as empty."""
    normalized = normalize_salutation(value)
    if normalized.known and normalized.value in ANREDEN:
        return normalized.value
    return None


def salutation_to_espo(value: str | None) -> tuple[str, bool]:
    """EspoCRM enum value for a canonical salutation (``""`` for none); ``(value, exact)`` where
    ``exact`` is False when EspoCRM cannot represent it (then ``""``), as `rechtsform_to_espo`."""
    normalized = normalize_salutation(value)
    if normalized.value is None:
        return "", True
    espo = ANREDE_TO_ESPO_SALUTATION.get(normalized.value) if normalized.known else None
    return (espo, True) if espo is not None else ("", False)


def salutation_to_anrede(value: str | None) -> str | None:
    """Advoware anrede for a canonical salutation: the canonical value, or an unknown one verbatim."""
    return normalize_salutation(value).value


# --------------------------------------------------------------------------- dates

_DATE_PREFIX = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})(?:$|[T\s])")
_GERMAN_DATE = re.compile(r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})\s*$")


def parse_date(raw: Any) -> str | None:
    """A date-only value as ``YYYY-MM-DD``; ``None`` for empty; raises ``ValueError`` if unparseable.

    Accepts ``YYYY-MM-DD``, ``YYYY-MM-DDT00:00:00[...]`` (the date part is taken *as written*, no
    time zone conversion, so a birth date never moves by a day) and ``DD.MM.YYYY``.
    """
    if raw is None:
        return None
    if isinstance(raw, date):
        return raw.isoformat()[:10]
    value = str(raw).strip()
    if not value:
        return None
    match = _DATE_PREFIX.match(value)
    if match:
        year, month, day = (int(part) for part in match.groups())
    else:
        match = _GERMAN_DATE.match(value)
        if not match:
            raise ValueError("not a date")
        day, month, year = (int(part) for part in match.groups())
    return date(year, month, day).isoformat()


# --------------------------------------------------------------------------- register data


def register_number_compare(value: Any) -> str | None:
    """``"HRB 12345"`` == ``"HRB12345"`` == ``"hrb 12345"``."""
    value = text(value)
    return None if value is None else re.sub(r"[\s.]", "", value).upper()


def register_court_compare(value: Any) -> str | None:
    """``"AG München"`` == ``"Amtsgericht  München"`` == ``"amtsgericht münchen"``."""
    value = text(value)
    if value is None:
        return None
    value = value.casefold()
    return re.sub(r"^ag\.?\s+", "amtsgericht ", value)


# --------------------------------------------------------------------------- identity keys
#
# The identity rule (services/beteiligte/identity.py, docs/backfill.md) compares parties by keys
# derived from the comparison forms above, never by its own parsing: a value the sync sees as
# "unchanged" can never give a different identity. Identity keys are coarser than comparison
# forms (spelling, punctuation and spaces in names; the court letter after a register number).

_NAME_FOLD = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ı": "i", "æ": "ae", "ø": "oe", "œ": "oe"}
)
_NAME_TOKEN = re.compile(r"[0-9a-z&]+")


def name_key(value: Any) -> str:
    """Identity form of a name: `text()`, case-folded, umlauts spelled out (ä→ae ö→oe ü→ue ß→ss),
    other accents dropped (é→e), "und"/"u."/"+" → "&", punctuation and all spaces removed.
    ``"Müller-Lüdenscheidt"`` == ``"mueller lüdenscheidt"``; ``""``/None → ``""``."""
    canonical = text(value)
    if canonical is None:
        return ""
    folded = canonical.casefold().translate(_NAME_FOLD)
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch))
    folded = re.sub(r"\bund\b|\+|\bu\.(?=\s)", " & ", folded)
    return "".join(_NAME_TOKEN.findall(folded))


_REGISTER_ENTRY = re.compile(r"(HRA|HRB|VR|GNR|GSR|PR)?\D*?(\d+)")


def register_number_key(value: Any) -> str | None:
    """Identity form of a register number: type + number from `register_number_compare`, leading
    zeros and a trailing court letter dropped. ``"HRB 12345 B"`` == ``"hrb 12.345"`` == ``"HRB12345"``
    → ``"HRB12345"`` (the letter names the court, which the rule compares on its own), while the
    sync still writes a change from ``"HRB 12345"`` to ``"HRB 12345 B"`` (comparison form)."""
    compact = register_number_compare(value)
    if compact is None:
        return None
    found = _REGISTER_ENTRY.search(compact)
    if not found:
        return compact
    return f"{found.group(1) or ''}{int(found.group(2))}"


def register_court_key(value: Any) -> str | None:
    """Identity form of a register court: `register_court_compare` without "Amtsgericht", name-folded.
    ``"AG München"`` == ``"Amtsgericht Muenchen"`` == ``"München"`` → ``"muenchen"``."""
    folded = name_key(register_court_compare(value))
    if folded.startswith("amtsgericht") and len(folded) > len("amtsgericht"):
        folded = folded[len("amtsgericht") :]
    return folded or None


# --------------------------------------------------------------------------- e-mail

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def is_email(value: str) -> bool:
    return bool(_EMAIL.match(value))


def email_key(value: str) -> str:
    """E-mails compare case-insensitively (EspoCRM's ``lower``)."""
    return value.strip().lower()


# --------------------------------------------------------------------------- phone

_PHONE_CHARS = re.compile(r"^\+?[\d\s()\-./]+$")
_DEFAULT_REGION = "DE"


def is_phone(value: str) -> bool:
    """Looks like a phone number: only digits, spaces and ``+()-./``, at least three digits.

    Values that are not (e.g. "siehe Zentrale") are not synced in either direction.
    """
    return bool(_PHONE_CHARS.match(value)) and sum(ch.isdigit() for ch in value) >= 3


@lru_cache(maxsize=4096)
def phone_key(value: str) -> str:
    """Comparison key of a phone number: E.164 (region DE) when parseable, else its digits.

    ``"+49 30 1234567"``, ``"030 1234567"`` and ``"0049 (30) 123 45 67"`` all give ``"+49301234567"``.
    """
    import phonenumbers  # lazy: only paid by a process that compares phone numbers

    stripped = value.strip()
    try:
        parsed = phonenumbers.parse(stripped, _DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_possible_number(parsed):
        return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    digits = "".join(ch for ch in stripped if ch.isdigit())
    return ("+" if stripped.startswith("+") else "") + digits
