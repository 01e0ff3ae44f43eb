"""The Motia runtime as installed: exact pins, and the core patches applied."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "node_modules" / "@motiadev" / "core" / "dist" / "src" / "server.mjs"
VERSION = "0.17.4-beta.185"


def test_every_motia_package_is_pinned_exactly() -> None:
    pkg = json.loads((ROOT / "package.json").read_text())
    deps = {**pkg["dependencies"], **pkg["devDependencies"]}
    motia = {k: v for k, v in deps.items() if k == "motia" or k.startswith("@motiadev/")}
    assert len(motia) == 9
    assert set(motia.values()) == {VERSION}
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@motiadev/core"]["version"] == VERSION


def test_installed_core_has_the_slowdown_fix_and_body_limit() -> None:
    src = SERVER.read_text()
    assert "const main = Object.create(stream());" in src
    assert "const main = stream();" not in src
    assert 'limit: "1gb"' not in src and "MOTIA_BODY_LIMIT" in src


NODE_MODULES = ROOT / "node_modules"
SCRIPT = ROOT / "scripts" / "patch-motia-core.mjs"
GATE_COPIES = ("@motiadev/core/dist/src/vmh-port-gate.mjs", "@motiadev/core/dist/src/vmh-webhook-check.mjs")


def _node() -> str:
    node = shutil.which("node")
    assert node, "node not installed"
    return node


def _patches() -> list[dict[str, object]]:
    proc = subprocess.run([_node(), str(SCRIPT), "--list"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    patches: list[dict[str, object]] = json.loads(proc.stdout)
    return patches


def _run(node_modules: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_node(), str(SCRIPT), str(node_modules)], capture_output=True, text=True, timeout=60
    )


def _copy_patched_files(dest: Path) -> list[str]:
    files = sorted({str(p["file"]) for p in _patches()} | set(GATE_COPIES))
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((NODE_MODULES / rel).read_bytes())
    return files


def test_installed_runtime_has_every_patch_of_the_script(tmp_path: Path) -> None:
    """Run the patch script on copies of the installed files: every patch must report
    'already applied' (a missing one would be applied to the copy and fail this test)."""
    _copy_patched_files(tmp_path)
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == len(_patches()) + len(GATE_COPIES)  # + the gate modules copied
    assert all(line.endswith("already applied") for line in lines), lines


def test_patch_script_fixes_an_unpatched_copy_and_is_idempotent(tmp_path: Path) -> None:
    """Un-apply every patch on a copy of the installed files (and drop the gate module), run
    the script: each patch is applied and the files equal the installed ones; a second run
    changes nothing."""
    files = _copy_patched_files(tmp_path)
    for copy in GATE_COPIES:
        (tmp_path / copy).unlink()
    patches = _patches()
    for p in reversed(patches):
        target = tmp_path / str(p["file"])
        text = target.read_text()
        assert str(p["to"]) in text, p["name"]
        text = (
            text.replace(str(p["to"]), str(p["from"]))
            if p["all"]
            else text.replace(str(p["to"]), str(p["from"]), 1)
        )
        target.write_text(text)
    first = _run(tmp_path)
    assert first.returncode == 0, first.stderr
    applied = [
        line for line in first.stdout.splitlines() if line.endswith(" applied") and "already" not in line
    ]
    assert len(applied) == len(patches) + len(GATE_COPIES), first.stdout
    for rel in files:
        assert (tmp_path / rel).read_bytes() == (NODE_MODULES / rel).read_bytes(), rel
    second = _run(tmp_path)
    assert second.returncode == 0 and all(
        line.endswith("already applied") for line in second.stdout.strip().splitlines()
    )


def test_patch_script_fails_loudly_when_motia_changed(tmp_path: Path) -> None:
    _copy_patched_files(tmp_path)
    (tmp_path / "@motiadev/core/dist/src/server.mjs").write_text("// some other motia version\n")
    proc = _run(tmp_path)
    assert proc.returncode == 1 and "pattern not found" in proc.stderr


def test_workbench_loads_nothing_from_third_parties_as_installed() -> None:
    """The installed Workbench page and its plugin hook inject no analytics or web fonts."""
    html = (NODE_MODULES / "@motiadev/workbench/dist/index.html").read_text()
    middleware = (NODE_MODULES / "@motiadev/workbench/dist/middleware.js").read_text()
    for host in ("fonts.googleapis.com", "fonts.gstatic.com", "cdn.amplitude.com"):
        assert host not in html
    assert "return html; // vmh: never inject the reo.dev script" in middleware
    assert "{ hmr: false, ws: false }" in middleware
