"""Configuration: every variable documented, missing/invalid ones named at start-up."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from services.errors import ConfigurationError
from services.settings import Settings, SetupSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {
    "ESPOCRM_API_BASE_URL": "http://crm.test/api/v1",
    "ESPOCRM_API_KEY": "k",
    "ESPOCRM_WEBHOOK_SECRETS": "w1:s1,w2:s2",
    "ADVOWARE_API_BASE_URL": "http://advo.test/",
    "ADVOWARE_SECURITY_URL": "http://advo.test/",
    "ADVOWARE_APP_ID": "app",
    "ADVOWARE_API_KEY": "a2V5",
    "ADVOWARE_KANZLEI": "K",
    "ADVOWARE_DATABASE": "D",
    "ADVOWARE_USER": "U",
    "ADVOWARE_PASSWORD": "p",
    "SYNC_ADMIN_TOKEN": "t",
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env from the project
    return monkeypatch


def test_defaults_and_parsing(clean_env: pytest.MonkeyPatch) -> None:
    for k, v in REQUIRED.items():
        clean_env.setenv(k, v)
    s = load_settings()
    assert s.ADVOWARE_PRODUCT_ID == 64 and s.ADVOWARE_ROLE == 2 and s.PORT == 3000
    assert s.ADVOWARE_TIMEZONE == "Europe/Berlin"
    assert s.webhook_secret("w2") == "s2" and s.webhook_secret("nope") is None
    assert "s1" not in repr(s) and "p" != str(s.ADVOWARE_PASSWORD)


def test_missing_variable_is_named(clean_env: pytest.MonkeyPatch) -> None:
    for k, v in REQUIRED.items():
        if k != "ADVOWARE_PASSWORD":
            clean_env.setenv(k, v)
    with pytest.raises(ConfigurationError, match="ADVOWARE_PASSWORD is missing"):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ADVOWARE_TIMEZONE", "Mars/Olympus"),
        ("ESPOCRM_WEBHOOK_SECRETS", "no-colon"),
        ("PORT", "99999"),
        ("WORKBENCH_PASSWORD", "short"),
        ("REDIS_URL", "http://x"),
        ("ESPOCRM_API_BASE_URL", "crm.test"),
    ],
)
def test_invalid_variable_is_named(clean_env: pytest.MonkeyPatch, name: str, value: str) -> None:
    for k, v in REQUIRED.items():
        clean_env.setenv(k, v)
    clean_env.setenv(name, value)
    with pytest.raises(ConfigurationError, match=f"{name} is invalid"):
        load_settings()


def test_env_example_lists_every_variable_with_placeholders() -> None:
    text = (ROOT / ".env.example").read_text()
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    assert set(Settings.model_fields) | set(SetupSettings.model_fields) <= names
    for line in text.splitlines():
        if re.match(r"^[A-Z_]*(KEY|PASSWORD|SECRET|TOKEN)[A-Z_]*=", line):
            assert "change-me" in line, line


def test_start_up_check_fails_fast_naming_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    env.update(REQUIRED)
    del env["SYNC_ADMIN_TOKEN"]
    proc = subprocess.run(
        [sys.executable, "-m", "services.settings"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "SYNC_ADMIN_TOKEN is missing" in proc.stderr


def test_port_above_the_old_hmr_limit_is_accepted(clean_env: pytest.MonkeyPatch) -> None:
    for k, v in REQUIRED.items():
        clean_env.setenv(k, v)
    clean_env.setenv("PORT", "50000")
    assert load_settings().PORT == 50000


@pytest.mark.parametrize("present", ["WORKBENCH_USER", "WORKBENCH_PASSWORD"])
def test_workbench_login_needs_user_and_password(clean_env: pytest.MonkeyPatch, present: str) -> None:
    for k, v in REQUIRED.items():
        clean_env.setenv(k, v)
    clean_env.setenv(present, "a-long-enough-value")
    with pytest.raises(ConfigurationError, match=r"WORKBENCH_PASSWORD is invalid.*set together"):
        load_settings()


def test_workbench_login_is_read(clean_env: pytest.MonkeyPatch) -> None:
    for k, v in REQUIRED.items():
        clean_env.setenv(k, v)
    clean_env.setenv("WORKBENCH_USER", "kanzlei-it")
    clean_env.setenv("WORKBENCH_PASSWORD", "correct horse battery")
    s = load_settings()
    assert s.WORKBENCH_USER == "kanzlei-it"
    assert (
        s.WORKBENCH_PASSWORD is not None
        and s.WORKBENCH_PASSWORD.get_secret_value() == "correct horse battery"
    )


def test_readme_table_lists_every_variable() -> None:
    text = (ROOT / "README.md").read_text()
    first_cells = re.findall(r"^\| ([^|]*`[A-Z][A-Z0-9_]+`[^|]*)\|", text, flags=re.M)
    names = {n for cell in first_cells for n in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}
    assert set(Settings.model_fields) - names == set()


def test_one_reader_of_the_environment_for_settings_and_the_intake(clean_env: pytest.MonkeyPatch) -> None:
    """services/environment.py is `Settings`' only source and the intake's reader: the process
    environment wins over `.env`, and both see the same values."""
    from services.environment import read_environment, redis_url, webhook_secrets

    (Path.cwd() / ".env").write_text(
        "".join(f"{k}={v}\n" for k, v in REQUIRED.items()) + "REDIS_URL=redis://dotenv:6379/0\n",
        encoding="utf-8",
    )
    clean_env.setenv("ESPOCRM_WEBHOOK_SECRETS", "w9:from-env")
    s = load_settings()
    env = read_environment()
    assert s.webhook_secret("w9") == "from-env" and webhook_secrets(env) == {"w9": "from-env"}
    assert s.REDIS_URL == redis_url(env) == "redis://dotenv:6379/0"
    with pytest.raises(ValueError, match="ESPOCRM_API_KEY"):  # `_env_file=None`: the environment alone
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_settings_read_nothing_but_the_one_reader(clean_env: pytest.MonkeyPatch) -> None:
    """What services/environment.py answers is all `Settings` sees (no second reading of
    os.environ or `.env` by pydantic-settings)."""
    from services import settings as settings_module

    given = {**REQUIRED, "PORT": "4321"}
    clean_env.setattr(settings_module, "read_environment", lambda env_file=None: dict(given), raising=False)
    clean_env.setenv("PORT", "1234")  # in os.environ, but not what the reader answered
    assert load_settings().PORT == 4321


async def test_the_clients_retry_as_the_settings_say(clean_env: pytest.MonkeyPatch) -> None:
    """The retry policy's numbers are settings (HTTP_RETRY_*): a client built from `Settings`
    gives up after HTTP_RETRY_MAX_ATTEMPTS tries."""
    import httpx

    from services.errors import UnavailableError
    from services.espocrm.client import EspoCrmClient

    for k, v in REQUIRED.items():
        clean_env.setenv(k, v)
    clean_env.setenv("HTTP_RETRY_MAX_ATTEMPTS", "2")
    clean_env.setenv("HTTP_RETRY_BASE_DELAY_SECONDS", "0.01")
    s = load_settings()
    tries: list[str] = []

    def down(request: httpx.Request) -> httpx.Response:
        tries.append(request.url.path)
        return httpx.Response(503)

    async with EspoCrmClient(s, transport=httpx.MockTransport(down)) as espo:
        with pytest.raises(UnavailableError):
            await espo.get("CBeteiligte", "r1")
    assert len(tries) == 2
