"""Advoware's field names, read case-insensitively: `BetNr`, `betnr` and `betNr` are one field.

Part 2 of shared/docs/advoware-api.md assumes camelCase; every public Advoware payload is
PascalCase ("Evidence that points away from Part 2"). The client passes every object it reads
through `canonical()`, so the rest of the service sees the names of contract.py whatever the
server's casing. Only names the service knows are renamed; unknown keys keep the server's
spelling, so they go back exactly as read in a full-replace PUT.
"""

from __future__ import annotations

from typing import Any

from services.advoware.contract import KNOWN_FIELDS, KOMMUNIKATION_FIELDS

_RECORD = {name.casefold(): name for name in KNOWN_FIELDS}
_KOMMUNIKATION = {name.casefold(): name for name in KOMMUNIKATION_FIELDS}
_LIST_FIELD = "kommunikation"


def _renamed(obj: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = names.get(key.casefold(), key) if isinstance(key, str) else key
        # A server sending one field in two spellings: the contract's spelling wins.
        if name in out and key != name:
            continue
        out[name] = value
    return out


def canonical(obj: Any) -> Any:
    """A Beteiligter (dict) with the known field names in the contract's spelling, its
    kommunikation entries too; anything that is not a dict is returned unchanged."""
    if not isinstance(obj, dict):
        return obj
    out = _renamed(obj, _RECORD)
    entries = out.get(_LIST_FIELD)
    if isinstance(entries, list):
        out[_LIST_FIELD] = [_renamed(e, _KOMMUNIKATION) if isinstance(e, dict) else e for e in entries]
    return out


def canonical_page(page: Any) -> Any:
    """A listing page (a list of Beteiligte) with canonical names; anything else unchanged."""
    return [canonical(item) for item in page] if isinstance(page, list) else page


def spelling(obj: dict[str, Any]) -> dict[str, str]:
    """Known field -> the server's own spelling of it in `obj`, where the two differ
    (what `check-advoware` reports)."""
    out: dict[str, str] = {}
    for key in obj:
        name = _RECORD.get(key.casefold()) if isinstance(key, str) else None
        if name is not None and name != key:
            out[name] = key
    return out
