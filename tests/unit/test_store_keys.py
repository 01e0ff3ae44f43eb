"""The key registry (services/store/keys.py): every `vmh:*` key is defined there and nowhere else,
and the names of the keys that hold data stay what deployed Redis instances already contain."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from services.store import keys

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("services", "steps", "sandbox", "bench", "tests")
# The registry itself, and this file (which pins the names below).
ALLOWED = {ROOT / "services" / "store" / "keys.py", Path(__file__).resolve()}
KEY_LITERAL = re.compile(r"vmh:[\w*<{]")


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def key_literals(path: Path, root: Path = ROOT) -> list[str]:
    """String literals (f-string parts included, docstrings not) that spell a `vmh:` key."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docs = _docstrings(tree)
    return [
        f"{path.relative_to(root)}:{node.lineno}: {node.value[:60]!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docs
        and KEY_LITERAL.search(node.value)
    ]


def test_no_vmh_key_literal_outside_the_registry() -> None:
    found = [
        hit
        for folder in SCANNED
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.resolve() not in ALLOWED
        for hit in key_literals(path)
    ]
    assert found == [], "build these keys with services/store/keys.py:\n" + "\n".join(found)


def test_the_check_sees_plain_and_f_string_literals(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text('"""Docs may name vmh:snap:<id>."""\nA = "vmh:lock:" + "x"\nB = f"vmh:snap:{A}"\n')
    assert len(key_literals(probe, tmp_path)) == 2


def test_the_only_raw_key_builder_is_private_to_the_registry() -> None:
    public = {name for name in vars(keys) if not name.startswith("_")}
    assert "key" not in public and "_key" in vars(keys)


def test_names_of_stored_data_are_stable() -> None:
    """Renaming one of these would orphan what a running deployment holds (snapshots, intents,
    watermarks, the token): change them only with a migration."""
    assert keys.snapshot("r1") == "vmh:snap:r1"
    assert keys.betnr_index(100001) == "vmh:betnr:100001"
    assert keys.create_intent("r1") == "vmh:intent:r1"
    assert keys.record_lock("r1") == "vmh:lock:r1"
    assert keys.record_again("r1") == "vmh:again:r1"
    assert keys.WATERMARK_ESPOCRM == "vmh:watermark:espocrm"
    assert keys.WATERMARK_ADVOWARE == "vmh:watermark:advoware"
    assert keys.PENDING_ADVOWARE == "vmh:pending:advoware"
    assert keys.SWEEP_RUNNING == "vmh:sweep:running"
    assert keys.BACKFILL_RUNNING == "vmh:backfill:running"
    assert keys.advoware_token("K", "U") == "vmh:advoware:token:K:U"
    assert keys.advoware_token_lock("K", "U") == "vmh:advoware:token:K:U:lock"
    assert keys.webhook_delivery("update", "ab") == "vmh:webhook:update:ab"
    assert keys.unlinked("r1") == "vmh:unlinked:r1"
    assert keys.pending_conflicts("r1") == "vmh:conflict:pending:r1"


def test_every_key_is_under_the_prefix() -> None:
    values = [v for n, v in vars(keys).items() if n.isupper() and isinstance(v, str) and n != "PREFIX"]
    assert values and all(v.startswith(keys.PREFIX) for v in values)
