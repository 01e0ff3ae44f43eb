"""`make espocrm-extension`: the entity `CBeteiligte` as an installable EspoCRM extension package,
built from the one schema (services/espocrm/schema.py), for admins who install extensions
(Administration → Extensions, or `bin/command extension --file=…`) rather than run the setup
command. Layout per shared/docs/espocrm-api.md §7:

    manifest.json
    files/custom/Espo/Custom/Resources/metadata/{scopes,entityDefs,clientDefs}/CBeteiligte.json
    files/custom/Espo/Custom/Resources/i18n/{en_US,de_DE}/{CBeteiligte,Global}.json
    files/custom/Espo/Custom/{Entities,Controllers}/CBeteiligte.php   (what the Entity Manager writes)

Installing rebuilds the database (the table and its columns). The webhooks are not part of it:
`python -m services.ops setup-espocrm --url …` afterwards finds the schema complete and registers
them. The package is reproducible: the same schema gives the same bytes.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path
from typing import Any

from services.espocrm.schema import ENTITY, FIELDS, LABEL_PLURAL, LABEL_SINGULAR, entity_metadata

NAME = "VMH Beteiligte Sync"
VERSION = "1.0.0"  # raise it with every change of services/espocrm/schema.py
RELEASE_DATE = "2026-12-06"
ZIP_TIMESTAMP = (2026, 12, 6, 0, 0, 0)
RESOURCES = "files/custom/Espo/Custom/Resources"
DEFAULT_PATH = Path("dist/vmh-beteiligte-espocrm.zip")

# The system fields and links of EspoCRM's `Base` entity template, which an Entity Manager
# entity gets and an extension must declare itself.
BASE_FIELDS: dict[str, dict[str, Any]] = {
    "description": {"type": "text"},
    "createdAt": {"type": "datetime", "readOnly": True},
    "modifiedAt": {"type": "datetime", "readOnly": True},
    "createdBy": {"type": "link", "readOnly": True, "view": "views/fields/user"},
    "modifiedBy": {"type": "link", "readOnly": True, "view": "views/fields/user"},
    "assignedUser": {"type": "link", "required": False, "view": "views/fields/assigned-user"},
    "teams": {"type": "linkMultiple", "view": "views/fields/teams"},
}
BASE_LINKS: dict[str, dict[str, Any]] = {
    "createdBy": {"type": "belongsTo", "entity": "User"},
    "modifiedBy": {"type": "belongsTo", "entity": "User"},
    "assignedUser": {"type": "belongsTo", "entity": "User"},
    "teams": {
        "type": "hasMany",
        "entity": "Team",
        "relationName": "entityTeam",
        "layoutRelationshipsDisabled": True,
    },
}
PHP_ENTITY = f"""<?php

namespace Espo\\Custom\\Entities;

class {ENTITY} extends \\Espo\\Core\\Templates\\Entities\\Base
{{
    public const ENTITY_TYPE = '{ENTITY}';
}}
"""
PHP_CONTROLLER = f"""<?php

namespace Espo\\Custom\\Controllers;

class {ENTITY} extends \\Espo\\Core\\Templates\\Controllers\\Base
{{
}}
"""


def manifest() -> dict[str, Any]:
    return {
        "name": NAME,
        "version": VERSION,
        "acceptableVersions": [">=8.0.0"],
        "php": [">=8.1"],
        "releaseDate": RELEASE_DATE,
        "author": "vmh-beteiligte-sync",
        "description": f"The entity {ENTITY} and its fields as the EspoCRM-Advoware Beteiligte sync needs them "
        "(stream and optimistic concurrency control on). Register the webhooks with setup-espocrm.",
    }


def entity_defs() -> dict[str, Any]:
    defs = entity_metadata()["entityDefs"]
    return {**defs, "fields": {**defs["fields"], **BASE_FIELDS}, "links": BASE_LINKS}


def labels() -> dict[str, Any]:
    options = {f.name: {o: o for o in f.options if o} for f in FIELDS if f.options and f.type == "enum"}
    return {
        "labels": {f"Create {ENTITY}": f"{LABEL_SINGULAR} anlegen"},
        "fields": {f.name: f.label for f in FIELDS},
        "options": options,
    }


def global_labels() -> dict[str, Any]:
    return {"scopeNames": {ENTITY: LABEL_SINGULAR}, "scopeNamesPlural": {ENTITY: LABEL_PLURAL}}


def package_files() -> dict[str, str]:
    """Path in the zip -> text."""

    def js(data: Any) -> str:
        return json.dumps(data, indent=4, ensure_ascii=False) + "\n"

    files = {
        "manifest.json": js(manifest()),
        f"{RESOURCES}/metadata/scopes/{ENTITY}.json": js(entity_metadata()["scopes"]),
        f"{RESOURCES}/metadata/entityDefs/{ENTITY}.json": js(entity_defs()),
        f"{RESOURCES}/metadata/clientDefs/{ENTITY}.json": js({"controller": "controllers/record"}),
        f"files/custom/Espo/Custom/Entities/{ENTITY}.php": PHP_ENTITY,
        f"files/custom/Espo/Custom/Controllers/{ENTITY}.php": PHP_CONTROLLER,
    }
    for language in ("en_US", "de_DE"):
        files[f"{RESOURCES}/i18n/{language}/{ENTITY}.json"] = js(labels())
        files[f"{RESOURCES}/i18n/{language}/Global.json"] = js(global_labels())
    return files


def build(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in sorted(package_files().items()):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            zf.writestr(info, text.encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)
    return path


if __name__ == "__main__":
    target = build(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH)
    print(f"EspoCRM extension written: {target} (version {VERSION})")
