"""The one declarative field map: every synced field, its names on both sides, its converter and
its direction. The mapper (read, write), the change detection (diff, hash) and the docs
(`render_markdown()` → docs/field-map.md) all read `FIELD_MAP`.

Each converter works on a whole record because a few fields span several attributes
(EspoCRM ``name`` is derived from first/last name; Advoware ``name`` is the surname *or* the
company name; the kind is spelled as ``beteiligterTyp`` in EspoCRM and as ``rechtsform``/``anrede``
in Advoware). ``kinds`` says for which kind a field carries a value; for the other kind it is None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from services.beteiligte.common import COMPANY, PERSON
from services.beteiligte.converters import (
    BIRTH_DATE,
    COMPANY_NAME,
    EMAILS,
    FIRST_NAME,
    KIND,
    LAST_NAME,
    LEGAL_FORM,
    PHONES,
    REGISTER_COURT,
    REGISTER_NUMBER,
    SALUTATION,
    TITLE,
    Converter,
)


class Direction(str, Enum):
    BOTH = "both"
    TO_ADVO = "to_advo"  # EspoCRM → Advoware only
    TO_ESPO = "to_espo"  # Advoware → EspoCRM only
    NONE = "none"  # not synced: each side keeps its own value


#: The words of SYNC_FIELD_DIRECTIONS: which system is the source of a field's value.
DIRECTION_WORDS: dict[str, Direction] = {
    "both": Direction.BOTH,
    "espocrm": Direction.TO_ADVO,
    "advoware": Direction.TO_ESPO,
    "none": Direction.NONE,
}


@dataclass(frozen=True)
class FieldSpec:
    canonical: str
    espo_attrs: tuple[str, ...]
    advo_fields: tuple[str, ...]
    converter: Converter
    direction: Direction = Direction.BOTH
    description: str = ""
    kinds: frozenset[str] = field(default_factory=lambda: frozenset({PERSON, COMPANY}))
    empty: Any = None  # the canonical "no value" (None, or [] for lists)

    def applies(self, kind: str) -> bool:
        return kind in self.kinds

    def compare(self, value: Any) -> Any:
        return self.converter.compare(value)


# --------------------------------------------------------------------------- the map

_PERSON = frozenset({PERSON})
_COMPANY = frozenset({COMPANY})

FIELD_MAP: tuple[FieldSpec, ...] = (
    FieldSpec("kind", ("beteiligterTyp",), ("rechtsform", "anrede"), KIND, description="person or company"),
    FieldSpec(
        "salutation", ("salutationName",), ("anrede",), SALUTATION, description="Anrede", kinds=_PERSON
    ),
    FieldSpec("title", ("titel",), ("titel",), TITLE, description="akademischer Titel"),
    FieldSpec(
        "first_name", ("firstName", "name"), ("vorname",), FIRST_NAME, description="Vorname", kinds=_PERSON
    ),
    FieldSpec("last_name", ("lastName", "name"), ("name",), LAST_NAME, description="Nachname", kinds=_PERSON),
    FieldSpec("company_name", ("name",), ("name",), COMPANY_NAME, description="Firmenname", kinds=_COMPANY),
    FieldSpec(
        "legal_form", ("rechtsform",), ("rechtsform",), LEGAL_FORM, description="Rechtsform", kinds=_COMPANY
    ),
    FieldSpec("birth_date", ("geburtsdatum",), ("geburtsdatum",), BIRTH_DATE, description="Geburtsdatum"),
    FieldSpec(
        "register_number",
        ("handelsregisterNummer",),
        ("handelsRegisterNummer",),
        REGISTER_NUMBER,
        description="Handelsregisternummer",
    ),
    FieldSpec(
        "register_court",
        ("registergericht",),
        ("registergericht",),
        REGISTER_COURT,
        description="Registergericht",
    ),
    FieldSpec(
        "emails",
        ("emailAddressData",),
        ("kommunikation[kommKz 4, 8]",),
        EMAILS,
        description="E-Mail-Adressen",
        empty=[],
    ),
    FieldSpec(
        "phones",
        ("phoneNumberData",),
        ("kommunikation[kommKz 1, 2, 3, 6, 7, 9, 10]",),
        PHONES,
        description="Telefon- und Faxnummern",
        empty=[],
    ),
)

FIELDS: dict[str, FieldSpec] = {spec.canonical: spec for spec in FIELD_MAP}
CANONICAL_FIELDS: tuple[str, ...] = tuple(FIELDS)
#: Fields whose meaning depends on the kind; a kind change writes all of them.
KIND_DEPENDENT: tuple[str, ...] = tuple(
    spec.canonical for spec in FIELD_MAP if spec.kinds != frozenset({PERSON, COMPANY})
)


def _field_by_name(name: str) -> FieldSpec:
    """A field by its canonical name or by its (only) EspoCRM attribute name."""
    if name in FIELDS:
        return FIELDS[name]
    matches = [spec for spec in FIELD_MAP if spec.espo_attrs[0] == name]
    if len(matches) != 1:
        known = ", ".join(CANONICAL_FIELDS)
        raise ValueError(f"unknown field {name!r} (canonical names: {known})")
    return matches[0]


def parse_directions(text: str) -> dict[str, Direction]:
    """Parse SYNC_FIELD_DIRECTIONS ("geburtsdatum:advoware,titel:both") into canonical -> Direction.

    Raises ValueError naming the first bad entry."""
    out: dict[str, Direction] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, word = (part.strip() for part in entry.partition(":"))
        if not sep or word.lower() not in DIRECTION_WORDS:
            raise ValueError(f"{entry!r}: expected <field>:<{'|'.join(DIRECTION_WORDS)}>")
        spec = _field_by_name(name)
        if spec.canonical == "kind" and DIRECTION_WORDS[word.lower()] is not Direction.BOTH:
            raise ValueError("kind (beteiligterTyp) decides how every other field is read; it stays two-way")
        out[spec.canonical] = DIRECTION_WORDS[word.lower()]
    return out


def effective_directions(overrides: Mapping[str, Direction] | None = None) -> dict[str, Direction]:
    """Every canonical field's direction: the map's own, replaced by `overrides`."""
    directions = {spec.canonical: spec.direction for spec in FIELD_MAP}
    directions.update(overrides or {})
    return directions


def render_markdown() -> str:
    """The field map as the Markdown document docs/field-map.md."""
    lines = [
        "# Field map: EspoCRM CBeteiligte ⇄ Advoware Beteiligter",
        "",
        "Generated from `services/beteiligte/fieldmap.py` by `render_markdown()`; do not edit by hand",
        "(`python -m services.beteiligte.fieldmap > docs/field-map.md`; a unit test checks it is current).",
        "",
        "| Canonical field | EspoCRM | Advoware | Kinds | Direction | Conversion / comparison |",
        "|---|---|---|---|---|---|",
    ]
    for spec in FIELD_MAP:
        kinds = ", ".join(sorted(spec.kinds))
        espo = ", ".join(f"`{a}`" for a in spec.espo_attrs)
        advo = ", ".join(f"`{a}`" for a in spec.advo_fields)
        summary = spec.converter.summary.replace("|", "\\|")
        lines.append(
            f"| `{spec.canonical}` ({spec.description}) | {espo} | {advo} | {kinds} | {spec.direction.value} "
            f"| {summary} |"
        )
    lines += [
        "",
        "## Rules",
        "",
        "- Direction: `both` (the three-way merge), `to_advo` (EspoCRM → Advoware only), `to_espo`",
        "  (Advoware → EspoCRM only) or `none` (not synced). `SYNC_FIELD_DIRECTIONS` overrides the column",
        "  above, e.g. `geburtsdatum:advoware,titel:both` (`espocrm` / `advoware` name the source); a",
        "  one-way field's source is its master, nothing is ever written towards it (docs/operations.md).",
        "- Empty string and missing values are `None` (lists: `[]`). Text is compared after NFC and",
        "  whitespace collapsing; what is written keeps the target's spelling when the values compare equal.",
        "- Not synced, sent back to Advoware exactly as read: `zusatz` and every field not listed here;",
        "  kommunikation entries with kommKz 5 (Internet), 11 (EPost), 12 (beA), unknown codes, and",
        "  entries whose value is not an e-mail address / phone number.",
        "- Never sent to Advoware (read-only): `betNr`, `geaendertAm`, `angelegtAm`.",
        "- Advoware has no primary flag: the first synced e-mail and the first synced phone in list",
        "  order are primary; the primary is written first. Order of the other entries is no change.",
        "- A kind change (Person ⇄ Firma) writes all name fields, salutation and legal form.",
        "- Unknown values are kept verbatim and reported (`MappingWarning`, log `unknown_value field=…`",
        "  without the value). An unknown Advoware Rechtsform is written to EspoCRM as `Sonstige` and",
        "  compares equal to it, so Advoware keeps the original until someone picks a real value in",
        "  EspoCRM; an unknown Advoware anrede compares equal to an empty salutation in the same way.",
        "- A phone or e-mail entry that persists keeps its Advoware kommKz, bemerkung and online flag",
        "  (FaxPrivat stays FaxPrivat); new entries get the default kommKz shown above and `online: false`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown(), end="")
