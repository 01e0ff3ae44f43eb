"""Every distribution pyproject.toml declares is used, pinned exactly, and every import is declared.

A declared but unused package is a supply-chain risk and a false hint to a newcomer (python-dateutil
was one). Each declared distribution needs an entry in USES saying how the project uses it; the
test checks that use is really there, so a removed import makes the package fail here.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = ("services", "steps", "sandbox", "tests", "bench")
LOCAL_PACKAGES = set(CODE_DIRS)

# distribution -> how it is used: ("import", module) a Python import somewhere in CODE_DIRS;
# ("tool", name) run by the Makefile; ("pytest-ini", key) a pytest plugin enabled by an ini option;
# ("needed-by", requirement) not imported, but required by that declared requirement's extra;
# ("pytest-option", flag) a pytest plugin whose command-line option the Makefile passes.
USES: dict[str, tuple[str, str]] = {
    "httpx": ("import", "httpx"),
    "redis": ("import", "redis"),
    "pydantic": ("import", "pydantic"),
    "pydantic-settings": ("import", "pydantic_settings"),
    "python-dotenv": ("import", "dotenv"),
    "phonenumbers": ("import", "phonenumbers"),
    "tqdm": ("import", "tqdm"),
    "prometheus-client": ("import", "prometheus_client"),
    "pytest": ("import", "pytest"),
    "pytest-asyncio": ("pytest-ini", "asyncio_mode"),
    "pytest-timeout": ("pytest-ini", "timeout"),
    "pytest-xdist": ("pytest-option", "--numprocesses"),
    "respx": ("import", "respx"),
    "fakeredis": ("import", "fakeredis"),
    "lupa": ("needed-by", "fakeredis[lua]"),  # fakeredis runs the Lua scripts (token, semaphore) with it
    "hypothesis": ("import", "hypothesis"),
    "ruff": ("tool", "ruff"),
    "mypy": ("tool", "mypy"),
    "vulture": ("tool", "vulture"),
    "pyinstrument": ("import", "pyinstrument"),
    "starlette": ("import", "starlette"),
    "uvicorn": ("import", "uvicorn"),
}
# Imported module -> the distribution that provides it, where the names differ.
MODULE_DIST = {
    "pydantic_settings": "pydantic-settings",
    "_pytest": "pytest",
    "prometheus_client": "prometheus-client",
}
# Imported on purpose as a part of a declared library, so pinned through it (checked below):
# module -> (its distribution, the declared distribution that requires it).
PROVIDED_BY = {
    "dotenv": ("python-dotenv", "pydantic-settings"),  # services/environment.py reads .env the same way
}
# Imported only inside `try: … except ImportError`, never installed by us: not a dependency.
OPTIONAL_PROBES = {"sniffio"}  # services/http.py records its absence once for httpcore
REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?P<extras>\[[^\]]+\])?==(?P<version>[^;\s]+)$")


def project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirements() -> list[str]:
    p = project()["project"]
    extras = p.get("optional-dependencies", {})
    return [*p["dependencies"], *(r for group in extras.values() for r in group)]


def dist_name(requirement: str) -> str:
    return re.split(r"[\[=<>!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def imported_top_modules() -> set[str]:
    found: set[str] = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module.split(".")[0])
    return found


def test_every_requirement_is_pinned_exactly() -> None:
    loose = [r for r in requirements() if not REQUIREMENT.match(r)]
    assert loose == []


def test_every_declared_distribution_is_used() -> None:
    declared = {dist_name(r) for r in requirements()}
    assert declared - set(USES) == set(), "declared without a use in USES: use it or remove it"
    assert set(USES) - declared == set(), "USES names a distribution pyproject.toml does not declare"
    modules = imported_top_modules()
    makefile = (ROOT / "Makefile").read_text()
    ini = project()["tool"]["pytest"]["ini_options"]
    unused = []
    for dist, (kind, what) in USES.items():
        used = {
            "import": lambda w: w in modules,
            "tool": lambda w: re.search(rf"\$\(VENV\)/bin/{w}\b", makefile) is not None,
            "pytest-ini": lambda w: w in ini,
            "needed-by": lambda w: any(r.startswith(w + "==") for r in requirements()),
            "pytest-option": lambda w: re.search(rf"\$\(VENV\)/bin/pytest .*{w}\b", makefile) is not None,
        }[kind](what)
        if not used:
            unused.append(f"{dist} ({kind} {what})")
    assert unused == []


def test_every_third_party_import_is_declared() -> None:
    declared = {dist_name(r) for r in requirements()}
    third_party = imported_top_modules() - set(sys.stdlib_module_names) - LOCAL_PACKAGES
    undeclared = sorted(
        m
        for m in third_party - set(PROVIDED_BY) - OPTIONAL_PROBES
        if MODULE_DIST.get(m, m).replace("_", "-") not in declared
    )
    assert undeclared == []


def test_modules_used_through_a_library_come_with_it() -> None:
    for module, (dist, parent) in PROVIDED_BY.items():
        required = {dist_name(r) for r in metadata.requires(parent) or [] if "extra ==" not in r}
        assert dist in required, f"{module}: {parent} no longer requires {dist}; declare it"
