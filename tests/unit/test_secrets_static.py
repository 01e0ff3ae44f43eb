"""No secret in the repository: scan every git-tracked file (and the ones about to be added).

- `.env` (real credentials) is never tracked; `.env.example` holds placeholders only;
- the sandbox's credentials appear only in the sandbox, its docs and the tests, never in the
  product code (`services/`, `steps/`, `scripts/`, the Motia config);
- nothing that looks like a real credential (private keys, cloud/API tokens, secrets assigned
  in code, credentials in URLs) is tracked anywhere.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sandbox import config as sandbox_cfg
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

# Settings whose values are secrets.
SECRET_SETTINGS = sorted(
    name
    for name in Settings.model_fields
    if any(word in name for word in ("KEY", "SECRET", "PASSWORD", "TOKEN"))
)
PLACEHOLDER = re.compile(r"^(|change-me|<[^>]*>|\$\{[A-Z_]+\})$")

SANDBOX_SECRETS = [
    sandbox_cfg.ESPO_API_KEY,
    sandbox_cfg.ESPO_API_SECRET,
    sandbox_cfg.ESPO_HUMAN_KEY,
    sandbox_cfg.ESPO_ADMIN_PASSWORD,
    sandbox_cfg.ADVO_API_KEY,
    sandbox_cfg.ADVO_API_KEY_BYTES.decode(),
    sandbox_cfg.ADVO_PASSWORD,
    sandbox_cfg.ADVO_HUMAN_PASSWORD,
    sandbox_cfg.SYNC_ADMIN_TOKEN,
    *(secret for _, secret in sandbox_cfg.WEBHOOKS.values()),
]
PRODUCT = ("services/", "steps/", "scripts/", "motia.config.ts", "package.json", "Makefile")

# Formats of real credentials (as secret scanners know them).
REAL_SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP )?PRIVATE KEY"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{50,}"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "Stripe key": re.compile(r"\b[sr]k_live_[0-9A-Za-z]{16,}"),
    "OpenAI/Anthropic key": re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{32,}"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "credentials in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s@'\"]{6,}@(?!example)"),
}
# `password = "..."` style assignments of a literal in product code.
ASSIGNED_SECRET = re.compile(
    r"""(?ix)\b\w*(?:password|passwd|secret|api_?key|token|kennwort)\w*\s*[:=]\s*["']([^"'\s]{8,})["']"""
)


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in out.splitlines() if line and (ROOT / line).is_file()]


def read(path: str) -> str:
    try:
        return (ROOT / path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return (ROOT / path).read_bytes().decode("latin-1")


@pytest.fixture(scope="module")
def files() -> list[str]:
    found = tracked_files()
    assert len(found) > 50, "git ls-files found too little; is this a checkout?"
    return found


def test_dotenv_is_not_tracked_and_ignored(files: list[str]) -> None:
    assert not [f for f in files if Path(f).name == ".env" or Path(f).name.startswith(".env.local")]
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, ".env must be in .gitignore"


def test_env_example_holds_placeholders_only() -> None:
    text = (ROOT / ".env.example").read_text()
    values = dict(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=(.*)$", text, flags=re.M))
    assert SECRET_SETTINGS and set(SECRET_SETTINGS) <= set(values)
    for name in SECRET_SETTINGS:
        if name == "ESPOCRM_WEBHOOK_SECRETS":
            pairs = [p.partition(":") for p in values[name].split(",")]
            assert all(PLACEHOLDER.match(secret) for _, _, secret in pairs), values[name]
        else:
            assert PLACEHOLDER.match(values[name].strip()), f"{name} must be a placeholder in .env.example"
    for secret in SANDBOX_SECRETS:
        assert secret not in text


def test_sandbox_credentials_stay_out_of_the_product(files: list[str]) -> None:
    leaks = [
        (path, secret)
        for path in files
        if path.startswith(PRODUCT)
        for secret in SANDBOX_SECRETS
        if secret in read(path)
    ]
    assert not leaks, leaks


def test_no_real_looking_secret_is_tracked(files: list[str]) -> None:
    hits = []
    for path in files:
        if path.endswith((".lock", "package-lock.json")):
            continue
        text = read(path)
        for label, pattern in REAL_SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                hits.append((path, label, match.group(0)[:24] + "…"))
    assert not hits, hits


def test_no_secret_literal_is_assigned_in_product_code(files: list[str]) -> None:
    hits = []
    for path in files:
        if not path.startswith(PRODUCT) or not path.endswith((".py", ".ts", ".mjs", ".sh", ".js")):
            continue
        for match in ASSIGNED_SECRET.finditer(read(path)):
            hits.append((path, match.group(0)[:60]))
    assert not hits, hits


def test_settings_never_print_secret_values() -> None:
    values: dict[str, Any] = {
        "ESPOCRM_API_BASE_URL": "http://crm.test/api/v1",
        "ESPOCRM_API_KEY": "Zq-espo-key-123456",
        "ESPOCRM_WEBHOOK_SECRETS": "wid:Zq-webhook-secret-123",
        "ADVOWARE_API_BASE_URL": "http://advo.test/",
        "ADVOWARE_SECURITY_URL": "http://advo.test/",
        "ADVOWARE_APP_ID": "app",
        "ADVOWARE_API_KEY": "Zq-advo-key-123456",
        "ADVOWARE_KANZLEI": "K",
        "ADVOWARE_DATABASE": "D",
        "ADVOWARE_USER": "U",
        "ADVOWARE_PASSWORD": "Zq-password-123456",
        "SYNC_ADMIN_TOKEN": "Zq-admin-token-123456",
    }
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    shown = repr(settings) + str(settings) + str(settings.model_dump())
    assert "Zq-" not in shown
