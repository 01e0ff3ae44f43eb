"""The simulated instance's live metadata of `CBeteiligte`: does the entity exist, its fields
(EspoCRM field definitions), its stream. Validation, output and the admin API read it here.

It starts as the project's one schema (services/espocrm/schema.py) or, with `--no-entity`,
without the entity: the admin API (sandbox/espocrm/admin_api.py) then creates it the way
EspoCRM's Entity Manager does (a `Base` entity has `name` and the system fields only) and adds
fields one by one. Optimistic concurrency is `Versioning.enabled` (sandbox/espocrm/versioning.py).
"""

from __future__ import annotations

import copy
from typing import Any

from services.espocrm.schema import ENTITY_TYPE, FIELDS, FIELDS_BY_NAME, LABEL_PLURAL, LABEL_SINGULAR

SYSTEM_TAIL = ("createdAt", "modifiedAt", "createdById", "createdByName", "modifiedById", "modifiedByName")
#: The multi-value attribute of a field of this type (only `GET /{id}` returns it).
DATA_ATTR = {"email": "emailAddressData", "phone": "phoneNumberData"}
SCHEMA_ORDER = {f.name: i for i, f in enumerate(FIELDS)}


class EntityDefs:
    def __init__(self, present: bool = True) -> None:
        self.exists = False
        self.fields: dict[str, dict[str, Any]] = {}
        self.scope: dict[str, Any] = {}
        self.reset(present)

    def reset(self, present: bool) -> None:
        """The whole schema (`present`) or no entity at all."""
        self.exists = present
        self.fields = {f.name: f.metadata() for f in FIELDS} if present else {}
        self.scope = (
            _scope(ENTITY_TYPE, stream=True, labels=(LABEL_SINGULAR, LABEL_PLURAL)) if present else {}
        )
        self._derive()

    def create(self, entity_type: str, stream: bool, labels: tuple[str, str]) -> None:
        """What EspoCRM's Entity Manager leaves: the entity with `name` (and system fields) only."""
        self.exists = True
        self.fields = {"name": FIELDS_BY_NAME["name"].metadata()}
        self.scope = _scope(entity_type, stream=stream, labels=labels)
        self._derive()

    def set_field(self, name: str, definition: dict[str, Any]) -> None:
        self.fields[name] = copy.deepcopy(definition)
        self._derive()

    def remove_field(self, name: str) -> None:
        self.fields.pop(name, None)
        self._derive()

    def _derive(self) -> None:
        ordered = sorted(self.fields, key=lambda n: (SCHEMA_ORDER.get(n, len(SCHEMA_ORDER)), n))
        rest = [n for n in ordered if n != "name"]
        self.attributes: list[str] = ["id", "name", "deleted", *rest, *SYSTEM_TAIL] if self.exists else []
        self.data_attrs: dict[str, str] = {
            DATA_ATTR[d["type"]]: n for n, d in self.fields.items() if d.get("type") in DATA_ATTR
        }
        self.defaults: dict[str, Any] = {"deleted": False}
        for name, d in self.fields.items():
            if "default" in d:
                self.defaults[name] = d["default"]
            elif d.get("type") == "enum" and "" in (d.get("options") or []):
                self.defaults[name] = ""

    def type_of(self, attr: str) -> str | None:
        d = self.fields.get(attr)
        return str(d["type"]) if d else None

    def options(self, attr: str) -> list[str]:
        d = self.fields.get(attr) or {}
        values = d.get("typeList") if d.get("type") == "phone" else d.get("options")
        return [str(v) for v in values or []]

    def max_length(self, attr: str) -> int | None:
        value = (self.fields.get(attr) or {}).get("maxLength")
        return int(value) if value else None

    def as_metadata(self, entity: str, occ: bool) -> dict[str, Any]:
        """This entity's part of `GET /api/v1/Metadata`."""
        if not self.exists:
            return {"scopes": {}, "entityDefs": {}}
        defs = {"fields": copy.deepcopy(self.fields), "optimisticConcurrencyControl": occ}
        return {"scopes": {entity: copy.deepcopy(self.scope)}, "entityDefs": {entity: defs}}


def _scope(entity_type: str, *, stream: bool, labels: tuple[str, str]) -> dict[str, Any]:
    return {
        "entity": True,
        "type": entity_type,
        "module": "Custom",
        "object": True,
        "isCustom": True,
        "stream": stream,
        "labelSingular": labels[0],
        "labelPlural": labels[1],
    }
