"""The one schema of CBeteiligte (services/espocrm/schema.py): it covers what the service writes,
the README's table is generated from it, and the extension package carries exactly it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from services.beteiligte.models import EspoBeteiligte
from services.espocrm import extension
from services.espocrm.schema import ENTITY, FIELDS, SYNC_STATUSES, entity_metadata, render_markdown
from services.espocrm.schema_check import Difference, differences, field_differences
from services.sync.model import ENTITY as SYNC_ENTITY
from services.sync.states import SyncStatus

ROOT = Path(__file__).resolve().parents[2]


def test_the_schema_names_every_field_of_the_record_model_and_every_status() -> None:
    system = {"id", "createdAt", "modifiedAt", "emailAddressData", "phoneNumberData"}
    assert {f.name for f in FIELDS} == set(EspoBeteiligte.model_fields) - system
    assert SYNC_STATUSES == tuple(s.value for s in SyncStatus)
    assert ENTITY == SYNC_ENTITY


def test_readme_table_is_generated_from_the_schema() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- schema:begin -->\n", 1)[1].split("<!-- schema:end -->", 1)[0]
    assert table == render_markdown(), "regenerate: python -m services.espocrm.schema"


def test_schema_check_finds_each_kind_of_difference() -> None:
    assert differences({}) == [Difference("entity")]
    meta = {
        "scopes": {ENTITY: entity_metadata()["scopes"]},
        "entityDefs": {ENTITY: entity_metadata()["entityDefs"]},
    }
    assert differences(meta) == []
    status = next(f for f in FIELDS if f.name == "syncStatus")
    assert field_differences(status, {"type": "enum", "options": list(status.options[:-1])}) == [
        Difference("options", "syncStatus", have=status.options[:-1], want=("excluded",))
    ]
    message = next(f for f in FIELDS if f.name == "syncErrorMessage")
    assert field_differences(message, {"type": "varchar", "maxLength": 255})[0].kind == "length"
    assert field_differences(message, {"type": "varchar"}) == []  # no limit declared
    assert field_differences(status, {"type": "varchar"})[0].kind == "type"
    assert field_differences(status, None) == [Difference("field", "syncStatus", want="enum")]


def test_extension_package_carries_the_manifest_and_exactly_the_schema(tmp_path: Path) -> None:
    path = extension.build(tmp_path / "ext.zip")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        res = "files/custom/Espo/Custom/Resources"
        defs = json.loads(zf.read(f"{res}/metadata/entityDefs/{ENTITY}.json"))
        scope = json.loads(zf.read(f"{res}/metadata/scopes/{ENTITY}.json"))
        labels = json.loads(zf.read(f"{res}/i18n/de_DE/{ENTITY}.json"))
    for key in ("name", "version", "acceptableVersions", "php", "releaseDate", "author", "description"):
        assert manifest[key], key
    assert f"{res}/metadata/clientDefs/{ENTITY}.json" in names
    assert f"files/custom/Espo/Custom/Entities/{ENTITY}.php" in names
    ours = {f.name: f.metadata() for f in FIELDS}
    assert {k: v for k, v in defs["fields"].items() if k in ours} == ours
    assert set(defs["fields"]) - set(ours) == set(extension.BASE_FIELDS)  # only the Base template's own
    assert (
        defs["optimisticConcurrencyControl"] is True and scope["stream"] is True and scope["entity"] is True
    )
    assert set(labels["fields"]) == set(ours)
    assert differences({"scopes": {ENTITY: scope}, "entityDefs": {ENTITY: defs}}) == []
    assert extension.build(tmp_path / "again.zip").read_bytes() == path.read_bytes()  # reproducible
