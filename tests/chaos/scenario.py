"""The seeded model of the chaos scenario: records, who may edit which field, fresh values,
and what the final state must be.

Field ownership makes the expectation independent of timing under faults: each field of a
record is edited either only in EspoCRM ("E"), only in Advoware ("A"), or only as a
same-field conflict pair ("C": Advoware first, then EspoCRM, back to back, before any sync
can see either). Different-field edits of one record on both sides in the same burst are the
concurrent different-field case. Then, whatever faults delay or repeat:

- an E or A field ends with the value of its last edit (no conflict can arise on it);
- a C field ends with the EspoCRM value of its last pair (EspoCRM wins), and the Advoware
  value that pair overwrote is named in a notification.

Values are compared in the mapper's canonical form, read from what the simulator saved for
the person's edit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from services.beteiligte import mapper
from services.beteiligte.normalize import RECHTSFORMEN

PERSON_FIELDS = ("title", "first_name", "last_name", "birth_date", "emails", "phones")
COMPANY_FIELDS = ("company_name", "legal_form", "register_number", "register_court", "emails", "phones")
CONFLICTABLE = {"title", "first_name", "last_name", "company_name", "register_court", "register_number"}
# The fields the identity rule compares (services/beteiligte/identity.py; contacts aside).
IDENTITY_FIELDS = {
    "first_name",
    "last_name",
    "birth_date",
    "company_name",
    "legal_form",
    "register_number",
    "register_court",
}
# Contact lists: merged, not chosen, by a pair's first sync.
LIST_FIELDS = {"emails", "phones"}

FIRST = [
    "Jürgen",
    "Käthe",
    "Ömer",
    "Anneliese",
    "Grzegorz",
    "Zoë",
    "Hans-Peter",
    "Marie-Luise",
    "Søren",
    "Ines",
]
LAST = [
    "Müller",
    "Schäfer",
    "Weiß",
    "Groß",
    "Özdemir",
    "Nguyen",
    "Zöllner",
    "Brandt",
    "Leutheusser",
    "Ahrens",
]
TITLES = ["Dr.", "Prof. Dr.", "Dipl.-Ing.", "Dr. jur.", "Prof.", "Dr. med."]
COMPANY_WORDS = ["Bäckerei", "Süd", "Nord", "Elbe", "Rhein", "Mühlen", "Bau", "Kanzlei", "Logistik", "Öko"]
COURTS = ["Amtsgericht München", "Amtsgericht Köln", "Amtsgericht Hamburg", "Amtsgericht Düsseldorf"]
PHONE_TYPES = [("Mobile", 3), ("Office", 1), ("Home", 6), ("Fax", 2), ("Other", 10)]


@dataclass
class Record:
    rid: str
    kind: str  # "person" | "company"
    label: str  # a unique marker in the name, for duplicate checks
    owner: dict[str, str] = field(default_factory=dict)  # canonical field -> "E" | "A" | "C"
    betnr: int | None = None
    deleted_in_advoware: bool = False
    created_in_chaos: bool = False
    # Two EspoCRM records of one party, created together (a double entry): the number of their
    # pair. Exactly one of them may get the Advoware party; the other is held as a duplicate.
    pair: int | None = None
    # The EspoCRM twin of a party a person entered in Advoware first (`existing_in_advoware`).
    # Until it is linked, a person edits none of its identity fields: a twin renamed in EspoCRM
    # before its first sync is no longer the same party by the identity rule (a new name with
    # the same register entry is only a WEAK match: held for a person, by design). Nor its e-mail
    # and phone lists: the link's first sync merges both sides' lists (decide.py: nothing of
    # either list is lost), so the twin's Advoware address stays beside the edited one.
    twin: bool = False
    # canonical field -> (canonical expected value, description of the edit)
    expected: dict[str, Any] = field(default_factory=dict)
    conflicts: list[dict[str, Any]] = field(default_factory=list)  # conflict pairs, in order


class Values:
    """Fresh, valid values from a seeded generator (a counter keeps them unique)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.n = 0

    def tick(self) -> int:
        self.n += 1
        return self.n

    def first(self) -> str:
        return f"{self.rng.choice(FIRST)}"

    def last(self) -> str:
        return f"{self.rng.choice(LAST)}-{self.tick()}"

    def title(self) -> str:
        return (
            f"{self.rng.choice(TITLES)} {self.tick()}" if self.rng.random() < 0.5 else self.rng.choice(TITLES)
        )

    def date(self) -> str:
        return f"{self.rng.randint(1940, 2004)}-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}"

    def company(self) -> str:
        return f"{self.rng.choice(COMPANY_WORDS)} {self.rng.choice(COMPANY_WORDS)} {self.tick()}"

    def register_number(self) -> str:
        return f"HR{self.rng.choice('AB')} {self.rng.randint(1000, 299999)}"

    def court(self) -> str:
        return f"{self.rng.choice(COURTS)} {self.tick()}"

    def emails(self) -> list[str]:
        return [f"chaos.{self.tick()}.{i}@example.de" for i in range(self.rng.randint(1, 2))]

    def phones(self) -> list[tuple[str, str]]:
        out = []
        for _ in range(self.rng.randint(1, 2)):
            kind = self.rng.choice(PHONE_TYPES)[0]
            out.append(
                (
                    f"+49 {self.rng.choice(['30', '89', '40', '221'])} {self.rng.randint(1000000, 9999999)}",
                    kind,
                )
            )
        return out

    def for_field(self, name: str, unique: bool = False) -> Any:
        if name == "title":
            return f"{self.rng.choice(TITLES)} {self.tick()}" if unique else self.title()
        if name == "first_name":
            return f"{self.first()}-{self.tick()}" if unique else self.first()
        if name == "last_name":
            return self.last()
        if name == "birth_date":
            return self.date()
        if name == "company_name":
            return self.company()
        if name == "legal_form":
            return self.rng.choice(RECHTSFORMEN)
        if name == "register_number":
            return f"HRB {self.tick()}{self.rng.randint(10, 99)}" if unique else self.register_number()
        if name == "register_court":
            return self.court()
        if name == "emails":
            return self.emails()
        if name == "phones":
            return self.phones()
        raise KeyError(name)


# --------------------------------------------------------------------------- how people write
def espo_change(name: str, value: Any) -> dict[str, Any]:
    """EspoCRM attributes a person sets in the CRM form for a canonical field."""
    simple = {
        "title": "titel",
        "first_name": "firstName",
        "last_name": "lastName",
        "birth_date": "geburtsdatum",
        "company_name": "name",
        "legal_form": "rechtsform",
        "register_number": "handelsregisterNummer",
        "register_court": "registergericht",
    }
    if name in simple:
        return {simple[name]: value}
    if name == "emails":
        return {"emailAddressData": [{"emailAddress": e, "primary": i == 0} for i, e in enumerate(value)]}
    if name == "phones":
        return {
            "phoneNumberData": [
                {"phoneNumber": n, "type": t, "primary": i == 0} for i, (n, t) in enumerate(value)
            ]
        }
    raise KeyError(name)


def advo_change(name: str, value: Any, current: dict[str, Any], company: bool) -> dict[str, Any]:
    """Advoware fields a person sets in Advoware for a canonical field (given the record as read)."""
    simple = {
        "title": "titel",
        "first_name": "vorname",
        "last_name": "name",
        "birth_date": "geburtsdatum",
        "company_name": "name",
        "legal_form": "rechtsform",
        "register_number": "handelsRegisterNummer",
        "register_court": "registergericht",
    }
    if name in simple:
        return {simple[name]: value}
    komm = list(current.get("kommunikation") or [])
    if name == "emails":
        kz = 4 if company else 8
        kept = [k for k in komm if k.get("kommKz") not in (4, 8)]
        new = [{"kommKz": kz, "tlf": e, "bemerkung": None, "online": False} for e in value]
        return {"kommunikation": new + kept}
    if name == "phones":
        kzs = {t: kz for t, kz in PHONE_TYPES}
        kept = [k for k in komm if k.get("kommKz") not in (1, 2, 3, 6, 7, 9, 10)]
        new = [{"kommKz": kzs[t], "tlf": n, "bemerkung": None, "online": False} for n, t in value]
        return {"kommunikation": kept + new}
    raise KeyError(name)


def initial_espo(kind: str, label: str, values: Values) -> dict[str, Any]:
    if kind == "person":
        body: dict[str, Any] = {
            "beteiligterTyp": "Person",
            "salutationName": values.rng.choice(["Mr.", "Mrs.", "Ms."]),
            "firstName": values.first(),
            "lastName": f"{label} {values.last()}",
            "titel": values.rng.choice([*TITLES, None]),
            "geburtsdatum": values.date(),
        }
    else:
        body = {
            "beteiligterTyp": "Firma",
            "name": f"{label} {values.company()}",
            "rechtsform": values.rng.choice(RECHTSFORMEN),
            "handelsregisterNummer": values.register_number(),
            "registergericht": values.rng.choice(COURTS),
        }
    body.update(espo_change("emails", values.emails()))
    body.update(espo_change("phones", values.phones()))
    return body


def advo_twin(body: dict[str, Any]) -> dict[str, Any]:
    """The Advoware party of the same person or company as the EspoCRM `body` (entered there by a
    person before the EspoCRM record exists): the service must link it, never create a second."""
    return mapper.to_advo_payload(mapper.from_espo(body), None)


def editable(rec: Record, name: str) -> bool:
    """May a person edit field `name` of `rec` in EspoCRM now (see `Record.twin`)?"""
    return not (rec.twin and rec.betnr is None and name in IDENTITY_FIELDS | LIST_FIELDS)


def assign_owners(kind: str, rng: random.Random, with_conflict: bool) -> dict[str, str]:
    names = list(PERSON_FIELDS if kind == "person" else COMPANY_FIELDS)
    rng.shuffle(names)
    owner: dict[str, str] = {}
    if with_conflict:
        conflict = next(n for n in names if n in CONFLICTABLE)
        owner[conflict] = "C"
    for name in names:
        if name not in owner:
            owner[name] = rng.choice("EA")
    return owner


def canonical(content_of_saved: dict[str, Any], name: str) -> Any:
    return content_of_saved.get(name)


def field_differs(name: str, actual: dict[str, Any], expected_value: Any) -> bool:
    """Does canonical `actual` differ from `expected_value` in field `name` (after normalisation)?"""
    return name in mapper.diff(actual, {**actual, name: expected_value})
