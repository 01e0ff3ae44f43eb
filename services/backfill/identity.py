"""Identity keys: what makes two records (in either system) the same party.

`identity_of_espo` / `identity_of_advo` turn a record into an `Identity` (folded name,
birth date, legal form, register entry, contacts); `compare` is the identity rule of
docs/backfill.md: STRONG (the same party), WEAK (might be: reported, never guessed) or none.
`identity_buckets` gives the keys under which candidates are looked up, so matching stays
linear in the database size. Pure, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ı": "i", "æ": "ae", "ø": "oe", "œ": "oe"})
_TOKEN = re.compile(r"[0-9a-z&]+")


def fold(value: Any) -> str:
    """Identity form of a name: NFC, case-folded, umlauts spelled out (ä→ae ö→oe ü→ue ß→ss),
    other accents dropped (é→e), "und"/"u."/"+" → "&", punctuation and all spaces removed.
    ``"Müller-Lüdenscheidt"`` == ``"mueller lüdenscheidt"``; ``""``/None → ``""``."""
    if value is None or isinstance(value, bool):
        return ""
    t = unicodedata.normalize("NFC", str(value)).casefold().translate(_FOLD)
    t = "".join(ch for ch in unicodedata.normalize("NFKD", t) if not unicodedata.combining(ch))
    t = re.sub(r"\bund\b|\+|\bu\.(?=\s)", " & ", t)
    return "".join(_TOKEN.findall(t))


def _legal_form(value: Any) -> str | None:
    """Canonical Rechtsform (the mapper's table); unknown values compare as "Sonstige"."""
    from services.beteiligte.normalize import rechtsform_compare

    return rechtsform_compare(value) if value not in (None, "") else None


# Trailing words that are a Rechtsform are split off the company name ("Isar Software GmbH" and
# "Isar Software" + Rechtsform GmbH are the same name). "Sonstige" is never read from a name.
_MAX_FORM_WORDS = 6


def split_company_name(name: Any) -> tuple[str, str | None]:
    """``"Müller & Söhne Bau GmbH & Co. KG"`` → ``("muellersoehnebau"... , "GmbH & Co. KG")``:
    (folded base name, canonical Rechtsform read from the end of the name or None)."""
    from services.beteiligte.normalize import RECHTSFORM_OTHER, normalize_rechtsform, text

    raw = text(name) or ""
    words = raw.split(" ")
    for n in range(min(_MAX_FORM_WORDS, len(words) - 1), 0, -1):
        tail = " ".join(words[-n:])
        found = normalize_rechtsform(tail)
        if found.known and found.value not in (None, RECHTSFORM_OTHER):
            return fold(" ".join(words[:-n])), found.value
    return fold(raw), None


_REGISTER = re.compile(r"(HRA|HRB|VR|GNR|GSR|PR)?\D*?(\d+)")


def register_key(number: Any) -> str | None:
    """``"HRB 12345 B"`` == ``"HRB12345"`` == ``"hrb 12.345"`` → ``"HRB12345"``."""
    from services.beteiligte.normalize import text

    raw = text(number)
    if raw is None:
        return None
    compact = re.sub(r"[\s.]", "", raw).upper()
    found = _REGISTER.search(compact)
    if not found:
        return compact or None
    return f"{found.group(1) or ''}{int(found.group(2))}"


def court_key(court: Any) -> str | None:
    """``"AG München"`` == ``"Amtsgericht Muenchen"`` == ``"München"`` → ``"muenchen"``."""
    folded = fold(court)
    for prefix in ("amtsgericht", "ag"):
        if folded.startswith(prefix) and len(folded) > len(prefix):
            folded = folded[len(prefix) :]
            break
    return folded or None


@dataclass(frozen=True)
class Identity:
    kind: str  # "person" | "company"
    name: str  # person: folded "last|first"; company: folded base name (legal form split off)
    birth_date: str | None = None
    legal_form: str | None = None
    register: str | None = None
    court: str | None = None
    contacts: frozenset[str] = frozenset()

    @property
    def usable(self) -> bool:
        return bool(self.name.strip("|"))


def identity_of_content(content: Mapping[str, Any]) -> Identity:
    from services.beteiligte.normalize import email_key, phone_key

    contacts: set[str] = set()
    for item in content.get("emails") or []:
        if isinstance(item, Mapping) and item.get("address"):
            contacts.add("e:" + email_key(str(item["address"])))
    for item in content.get("phones") or []:
        if isinstance(item, Mapping) and item.get("number"):
            contacts.add("p:" + phone_key(str(item["number"])))
    if content.get("kind") == "company":
        base, form_in_name = split_company_name(content.get("company_name"))
        return Identity(
            kind="company",
            name=base,
            legal_form=form_in_name or _legal_form(content.get("legal_form")),
            register=register_key(content.get("register_number")),
            court=court_key(content.get("register_court")),
            contacts=frozenset(contacts),
        )
    return Identity(
        kind="person",
        name=f"{fold(content.get('last_name'))}|{fold(content.get('first_name'))}",
        birth_date=content.get("birth_date") or None,
        contacts=frozenset(contacts),
    )


def identity_of_espo(row: Mapping[str, Any]) -> Identity:
    from services.beteiligte import mapper

    return identity_of_content(mapper.from_espo(row))


def identity_of_advo(row: Mapping[str, Any]) -> Identity:
    from services.beteiligte import mapper

    return identity_of_content(mapper.from_advo(row))


class Strength(IntEnum):
    NONE = 0
    WEAK = 1  # might be the same party: reported, never linked, never created
    STRONG = 2  # the same party by the documented rule


@dataclass(frozen=True)
class Match:
    strength: Strength
    rule: str

    def __bool__(self) -> bool:
        return self.strength is not Strength.NONE


NO_MATCH = Match(Strength.NONE, "")


def compare(a: Identity, b: Identity) -> Match:
    """The identity rule (docs/backfill.md). Symmetric; missing data never contradicts,
    different data always does."""
    if a.kind != b.kind or not a.usable or not b.usable:
        return NO_MATCH
    shared_contact = bool(a.contacts & b.contacts)
    if a.kind == "person":
        if a.name != b.name:
            return NO_MATCH
        if a.birth_date and b.birth_date:
            if a.birth_date == b.birth_date:
                return Match(Strength.STRONG, "person: name + birth date")
            return NO_MATCH
        if shared_contact:
            return Match(Strength.STRONG, "person: name + e-mail/phone (birth date missing)")
        return Match(Strength.WEAK, "same name, birth date missing")
    # companies
    same_register: bool | None = None  # None: not known on both sides
    if a.register and b.register:
        same_register = a.register == b.register and not (a.court and b.court and a.court != b.court)
    if a.name != b.name:
        if same_register:
            return Match(Strength.WEAK, "same register entry, different name")
        return NO_MATCH
    if a.legal_form and b.legal_form and a.legal_form != b.legal_form:
        return NO_MATCH
    if same_register is False:
        return NO_MATCH
    if same_register:
        return Match(Strength.STRONG, "company: name + register entry")
    if a.legal_form and b.legal_form:
        return Match(Strength.STRONG, "company: name + Rechtsform")
    if shared_contact:
        return Match(Strength.STRONG, "company: name + e-mail/phone")
    return Match(Strength.WEAK, "same company name, nothing else to confirm")


def identity_buckets(identity: Identity) -> list[tuple[str, ...]]:
    """Lookup keys: records sharing none of them can never match."""
    out: list[tuple[str, ...]] = [(identity.kind, identity.name)]
    if identity.kind == "company" and identity.register:
        out.append(("register", identity.register))
    return out
