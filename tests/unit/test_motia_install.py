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


def test_installed_runtime_has_every_patch_of_the_script(tmp_path: Path) -> None:
    """Run the patch script on copies of the installed files: every patch must report
    'already applied' (a missing one would be applied to the copy and fail this test)."""
    core = ROOT / "node_modules" / "@motiadev" / "core" / "dist" / "src"
    originals = [
        core / "server.mjs",
        ROOT / "node_modules" / "motia" / "dist" / "cli.mjs",
        core / "call-step-file.mjs",
        core / "python" / "python-runner.py",
        ROOT / "node_modules" / "motia" / "dist" / "redis" / "connection.mjs",
    ]
    copies = []
    for i, original in enumerate(originals):
        copy = tmp_path / f"{i}-{original.name}"
        copy.write_bytes(original.read_bytes())
        copies.append(str(copy))
    node = shutil.which("node")
    assert node
    proc = subprocess.run(
        [node, str(ROOT / "scripts" / "patch-motia-core.mjs"), *copies],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) >= 10 and all(line.endswith("already applied") for line in lines), lines


def test_patch_script_fixes_an_unpatched_copy_and_is_idempotent(tmp_path: Path) -> None:
    server = tmp_path / "server.mjs"
    cli = tmp_path / "cli.mjs"
    unpatched = (
        SERVER.read_text()
        .replace("const main = Object.create(stream());", "const main = stream();")
        .replace('limit: process.env.MOTIA_BODY_LIMIT || "1mb",', 'limit: "1gb",')
    )
    server.write_text(unpatched)
    cli.write_text("program.parseAsync(process.argv).catch(() => {\n\tprocess.exit(1);\n});\n")
    node = shutil.which("node")
    assert node
    cmd = [node, str(ROOT / "scripts" / "patch-motia-core.mjs"), str(server), str(cli)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    patched = server.read_text()
    assert "Object.create(stream())" in patched and "MOTIA_BODY_LIMIT" in patched
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0 and server.read_text() == patched
    assert "already applied" in second.stdout


def test_patch_script_fails_loudly_when_motia_changed(tmp_path: Path) -> None:
    server = tmp_path / "server.mjs"
    cli = tmp_path / "cli.mjs"
    server.write_text("// some other motia version\n")
    cli.write_text("// nothing\n")
    node = shutil.which("node")
    assert node
    proc = subprocess.run(
        [node, str(ROOT / "scripts" / "patch-motia-core.mjs"), str(server), str(cli)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "pattern not found" in proc.stderr
