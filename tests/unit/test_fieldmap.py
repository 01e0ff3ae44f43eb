"""The field map is the one source: the docs, the models and the mapper agree with it."""

from __future__ import annotations

from pathlib import Path

from services.advoware.models import AdvowareBeteiligter
from services.beteiligte import mapper
from services.beteiligte.fieldmap import (
    CANONICAL_FIELDS,
    FIELD_MAP,
    KIND_DEPENDENT,
    Direction,
    render_markdown,
)
from services.beteiligte.models import EspoBeteiligte

DOC = Path(__file__).resolve().parents[2] / "docs" / "field-map.md"


def test_docs_field_map_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/field-map.md is stale: python_modules/bin/python -m services.beteiligte.fieldmap > docs/field-map.md"
    )


def test_every_field_is_documented() -> None:
    doc = render_markdown()
    for spec in FIELD_MAP:
        assert f"`{spec.canonical}`" in doc
        assert spec.description


def test_canonical_names_unique_and_match_content() -> None:
    assert len(set(CANONICAL_FIELDS)) == len(FIELD_MAP)
    assert tuple(mapper.from_espo({})) == CANONICAL_FIELDS
    assert tuple(mapper.from_advo({"name": "x"})) == CANONICAL_FIELDS


def test_attribute_names_exist_in_the_models() -> None:
    espo_fields = set(EspoBeteiligte.model_fields)
    advo_aliases = {f.alias for f in AdvowareBeteiligter.model_fields.values()}
    for spec in FIELD_MAP:
        for attr in spec.espo_attrs:
            assert attr in espo_fields, attr
        for advo in spec.advo_fields:
            assert advo.split("[")[0] in advo_aliases, advo


def test_directions_and_kinds() -> None:
    assert all(isinstance(spec.direction, Direction) for spec in FIELD_MAP)
    assert set(KIND_DEPENDENT) == {"salutation", "first_name", "last_name", "company_name", "legal_form"}


def test_not_synced_fields_are_not_in_the_map() -> None:
    mapped = {a for spec in FIELD_MAP for a in spec.advo_fields}
    for name in ("zusatz", "betNr", "geaendertAm", "angelegtAm"):
        assert name not in mapped
