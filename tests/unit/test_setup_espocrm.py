"""`python -m services.ops setup-espocrm` against the EspoCRM simulator, in-process (no Motia):
from an empty instance to the one schema and three webhooks; idempotent; `--dry-run` lists
exactly what is missing and changes nothing; an incompatible field type is refused by name."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import config as cfg
from sandbox.espocrm import EspoSimulator
from services.espocrm import admin as admin_calls
from services.espocrm.schema import ENTITY, FIELDS
from services.espocrm.schema_check import differences
from services.ops import cli, setup_espocrm

URL = "https://sync.kanzlei.example.de"
ADMIN_ENV = {
    "ESPOCRM_ADMIN_USER": cfg.ESPO_HUMAN_USER_NAME,
    "ESPOCRM_ADMIN_PASSWORD": cfg.ESPO_ADMIN_PASSWORD,
}


@pytest.fixture
async def espo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[EspoSimulator]:
    """An empty instance (no entity, no webhooks) and the setup's environment."""
    monkeypatch.chdir(tmp_path)  # no project .env
    env = {
        "ESPOCRM_API_BASE_URL": "http://espo.test/api/v1",
        "ESPOCRM_API_KEY": cfg.ESPO_API_KEY,
        **ADMIN_ENV,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sim = EspoSimulator(cfg.SandboxConfig(entity_enabled=False, webhooks_enabled=False))
    yield sim
    await sim.dispatcher.stop()


async def setup(sim: EspoSimulator, *argv: str) -> tuple[int, str, list[dict[str, Any]]]:
    """Run the command; (exit code, its output, the writes it sent)."""
    since = sim.harness.seq
    args = cli.build_parser().parse_args(["setup-espocrm", "--url", URL, *argv])
    out = io.StringIO()
    code = await setup_espocrm.command(args, out, transport=httpx.ASGITransport(app=sim.app))
    writes = [c for c in sim.harness.calls_since(since) if c["method"] != "GET"]
    return code, out.getvalue(), writes


def metadata(sim: EspoSimulator) -> dict[str, Any]:
    return sim.store.defs.as_metadata(ENTITY, sim.store.versioning.enabled)


async def test_empty_instance_is_set_up_and_a_second_run_changes_nothing(espo: EspoSimulator) -> None:
    code, out, writes = await setup(espo)
    assert code == 0, out
    assert differences(metadata(espo)) == []  # entity, every field, stream and concurrency control
    hooks = list(espo.dispatcher.webhooks.values())
    assert sorted(h.event for h in hooks) == [f"{ENTITY}.{e}" for e in ("create", "delete", "update")]
    assert all(h.user_id == cfg.ESPO_API_USER_ID and h.skip_own and h.is_active for h in hooks)
    assert {h.url for h in hooks} == {
        f"{URL}/vmh/webhook/beteiligte/{e}" for e in ("create", "update", "delete")
    }
    secrets = ",".join(sorted(f"{h.id}:{h.secret_key}" for h in hooks))
    line = next(ln for ln in out.splitlines() if ln.startswith("ESPOCRM_WEBHOOK_SECRETS="))
    assert ",".join(sorted(line.split("=", 1)[1].split(","))) == secrets
    assert len(writes) == 1 + (len(FIELDS) - 1) + 3  # entity, fields (name comes with it), webhooks
    assert cfg.ESPO_ADMIN_PASSWORD not in out

    code, again, writes = await setup(espo)
    assert code == 0 and writes == []
    assert "nothing to change" in again and line in again  # the same secrets, read back


async def test_dry_run_lists_exactly_the_missing_pieces_and_changes_nothing(espo: EspoSimulator) -> None:
    assert (await setup(espo))[0] == 0
    defs = espo.store.defs
    defs.remove_field("betnr")
    defs.set_field("syncStatus", {**defs.fields["syncStatus"], "options": ["pending_sync", "clean"]})
    defs.set_field("titel", {**defs.fields["titel"], "maxLength": 20})
    espo.store.versioning.switch(False, ())
    update_hook = next(h for h in espo.dispatcher.webhooks.values() if h.event.endswith(".update"))
    espo.dispatcher.remove(update_hook.id)
    delete_hook = next(h for h in espo.dispatcher.webhooks.values() if h.event.endswith(".delete"))
    delete_hook.is_active = False
    before = metadata(espo)

    code, out, writes = await setup(espo, "--dry-run")
    assert code == 0 and writes == []
    assert metadata(espo) == before and len(espo.dispatcher.webhooks) == 2
    listed = [ln for ln in out.splitlines() if ln.startswith("would ")]
    missing = (
        "'failed', 'conflict', 'deleted_in_advoware', 'permanently_failed', 'excluded', 'syncing', 'dirty'"
    )
    assert sorted(listed) == sorted(
        [
            "would create field betnr (int)",
            f"would update field syncStatus: add value(s) {_in_schema_order(missing)}",
            "would update field titel: maxLength 20 -> 100",
            f"would update entity {ENTITY}: optimistic concurrency control on",
            f"would create webhook {ENTITY}.update -> {URL}/vmh/webhook/beteiligte/update (skipOwn, as the API user)",
            f"would update webhook {delete_hook.id} ({ENTITY}.delete): isActive on",
        ]
    )
    assert "dry run: 6 change(s) listed, none made" in out

    code, _, writes = await setup(espo)
    assert code == 0 and len(writes) == 6 and differences(metadata(espo)) == []


def _in_schema_order(values: str) -> str:
    wanted = {v.strip().strip("'") for v in values.split(",")}
    field = next(f for f in FIELDS if f.name == "syncStatus")
    return ", ".join(repr(v) for v in field.options if v in wanted)


async def test_a_field_of_an_incompatible_type_is_refused_by_name(
    espo: EspoSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (await setup(espo))[0] == 0
    espo.store.defs.set_field("betnr", {"type": "varchar", "maxLength": 20, "isCustom": True})
    espo.store.defs.remove_field("titel")  # missing, but nothing is changed while betnr is wrong
    code, _, writes = await setup(espo)
    assert code == 1 and writes == []
    err = capsys.readouterr().err
    assert "field betnr is of type varchar, the service writes int" in err and "Nothing was changed" in err
    assert "titel" not in espo.store.defs.fields


async def test_write_env_puts_the_secrets_into_the_dotenv_and_never_the_password(
    espo: EspoSimulator, tmp_path: Path
) -> None:
    env = tmp_path / "service.env"
    env.write_text("ESPOCRM_API_KEY=x\nESPOCRM_WEBHOOK_SECRETS=old:old\nPORT=3000\n")
    code, out, _ = await setup(espo, "--write-env", str(env))
    assert code == 0 and "written to" in out and "ESPOCRM_WEBHOOK_SECRETS=" not in out
    lines = env.read_text().splitlines()
    assert lines[0] == "ESPOCRM_API_KEY=x" and lines[2] == "PORT=3000"
    assert lines[1].startswith("ESPOCRM_WEBHOOK_SECRETS=") and "old:old" not in lines[1]
    assert f"SYNC_PUBLIC_URL={URL}" in lines
    assert cfg.ESPO_ADMIN_PASSWORD not in env.read_text()
    assert env.stat().st_mode & 0o077 == 0


def test_without_an_admin_login_it_says_what_to_set(
    espo: EspoSimulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ESPOCRM_ADMIN_PASSWORD")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: nothing can be asked
    assert cli.main(["setup-espocrm", "--url", URL], out=io.StringIO()) == cli.EXIT_USAGE
    assert "ESPOCRM_ADMIN_PASSWORD" in capsys.readouterr().err
    assert not espo.store.defs.exists


async def test_a_wrong_admin_password_changes_nothing(
    espo: EspoSimulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ESPOCRM_ADMIN_PASSWORD", "not-the-password")
    code, _, writes = await setup(espo)
    err = capsys.readouterr().err
    assert code == 1 and writes == [] and "unauthenticated" in err
    assert "not-the-password" not in err


async def test_a_reused_webhook_whose_secret_is_withheld_is_named_not_guessed(
    espo: EspoSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await setup(espo))[0] == 0
    read_whole = admin_calls.webhooks

    async def without_secrets(client: Any, *, whole: bool = True) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in w.items() if k != "secretKey"} for w in await read_whole(client, whole=whole)
        ]

    monkeypatch.setattr(admin_calls, "webhooks", without_secrets)
    code, out, writes = await setup(espo, "--write-env", "service.env")
    assert code == 0 and writes == [] and not Path("service.env").exists()
    line = next(ln for ln in out.splitlines() if "did not show the secret key" in ln)
    assert all(f"{h.id}:<secretKey>" in line for h in espo.dispatcher.webhooks.values())
