"""How an EspoCRM instance's `CBeteiligte` differs from the one schema (services/espocrm/schema.py).

Pure: takes what `GET /api/v1/Metadata` answers, returns the differences. The setup command
turns each into a change (or refuses), the start-up check into a problem line with its fix.

| difference      | means                                                   | writes fail? | setup          |
|-----------------|---------------------------------------------------------|--------------|----------------|
| `entity`        | no entity `CBeteiligte`                                 | yes          | createEntity   |
| `field`         | a field the service reads or writes is missing          | yes (1)      | create field   |
| `type`          | a field has a type the service cannot write             | yes          | refuses        |
| `options`       | enum values (phone types) the service writes are missing| yes          | add the values |
| `length`        | a text field is shorter than what the service writes    | yes          | widen it       |
| `stream`        | the entity's stream is off (notices cannot be posted)   | no           | updateEntity   |
| `concurrency`   | optimistic concurrency control is off                   | no           | updateEntity   |

(1) Not for an `optional` field (`syncFingerprint`): EspoCRM drops an undefined attribute from a
write, so the service works without it, with less evidence after Redis lost its data (a warning).

Compatible types: the schema's own, and varchar ⇄ text (both take text; the length decides).
Options or fields an instance has beyond the schema are fine and never removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.espocrm.schema import ENTITY, FIELDS, FIELDS_BY_NAME, FieldDef

#: The longest `syncErrorMessage` the service writes (services/sync/verify.py caps its text at
#: 1,000 characters; the outcome reasons are shorter), for a text field an instance made varchar.
TEXT_LENGTH = 1100
COMPATIBLE: dict[str, frozenset[str]] = {
    "varchar": frozenset({"varchar", "text"}),
    "text": frozenset({"text", "varchar"}),
}
FAILS_WRITES = frozenset({"entity", "field", "type", "options", "length"})


@dataclass(frozen=True)
class Difference:
    kind: str
    field: str | None = None
    have: Any = None
    want: Any = None

    @property
    def fails_writes(self) -> bool:
        if self.kind == "field" and self.field in FIELDS_BY_NAME and FIELDS_BY_NAME[self.field].optional:
            return False  # EspoCRM drops an undefined attribute from a write
        return self.kind in FAILS_WRITES

    def describe(self) -> str:
        """One line, naming the field and what differs (no record data)."""
        if self.kind == "entity":
            return f"EspoCRM has no entity {ENTITY}"
        if self.kind == "field":
            return f"{ENTITY} has no field {self.field} ({self.want})"
        if self.kind == "type":
            return f"{ENTITY} field {self.field} is of type {self.have}, the service writes {self.want}"
        if self.kind == "options":
            values = ", ".join(repr(v) for v in self.want)
            return f"{ENTITY} field {self.field} lacks the value(s) {values} the service writes"
        if self.kind == "length":
            return f"{ENTITY} field {self.field} holds {self.have} characters, the service writes up to {self.want}"
        if self.kind == "stream":
            return f"{ENTITY} has its stream off (notices are stream posts)"
        return (
            f"{ENTITY} has optimistic concurrency control off "
            "(EspoCRM ignores X-Version-Number: a person's save during a sync can be overwritten)"
        )


def needed_length(spec: FieldDef) -> int | None:
    return spec.max_length or (TEXT_LENGTH if spec.type == "text" else None)


def entity_parts(metadata: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(scope definition or None when the entity is missing, entityDefs) from `GET /Metadata`."""
    scope = (metadata.get("scopes") or {}).get(ENTITY)
    defs = (metadata.get("entityDefs") or {}).get(ENTITY) or {}
    return (dict(scope) if isinstance(scope, Mapping) else None), dict(defs)


def differences(metadata: Mapping[str, Any]) -> list[Difference]:
    """Every way the instance differs from the schema, in the schema's field order."""
    scope, defs = entity_parts(metadata)
    if scope is None:
        return [Difference("entity")]
    fields = defs.get("fields") or {}
    out: list[Difference] = []
    for spec in FIELDS:
        out.extend(field_differences(spec, fields.get(spec.name)))
    if not scope.get("stream"):
        out.append(Difference("stream", have=False, want=True))
    if not defs.get("optimisticConcurrencyControl"):
        out.append(Difference("concurrency", have=False, want=True))
    return out


def field_differences(spec: FieldDef, existing: Mapping[str, Any] | None) -> list[Difference]:
    if existing is None:
        return [Difference("field", spec.name, want=spec.type)]
    have_type = str(existing.get("type"))
    if have_type not in COMPATIBLE.get(spec.type, frozenset({spec.type})):
        return [Difference("type", spec.name, have=have_type, want=spec.type)]
    out: list[Difference] = []
    if spec.options:
        key = "typeList" if spec.type == "phone" else "options"
        have_options = [str(o) for o in existing.get(key) or []]
        missing = tuple(o for o in spec.options if o not in have_options)
        if missing:
            out.append(Difference("options", spec.name, have=tuple(have_options), want=missing))
    want_length = needed_length(spec)
    have_length = existing.get("maxLength")
    if have_type == "varchar" and want_length and have_length and int(have_length) < want_length:
        out.append(Difference("length", spec.name, have=int(have_length), want=want_length))
    return out
