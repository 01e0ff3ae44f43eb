"""scripts/serve.sh reads .env the way services/settings.py does: the environment wins."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_load_dotenv_never_overrides_the_environment(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# a comment\n"
        "FROM_ENV=from-file\n"
        'QUOTED="two words"\n'
        "SINGLE='x=y'\n"
        "export EXPORTED=yes\n"
        "  SPACED = padded  \n"
        "not a line\n"
        "1BAD=no\n"
    )
    script = (
        f"source {ROOT / 'scripts' / 'common.sh'}; load_dotenv {dotenv}; "
        'printf "%s|%s|%s|%s|%s|%s" "$FROM_ENV" "$QUOTED" "$SINGLE" "$EXPORTED" "$SPACED" "$(env | grep -c ^1BAD=)"'
    )
    env = {"PATH": os.environ["PATH"], "FROM_ENV": "from-environment"}
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "from-environment|two words|x=y|yes|padded|0"
