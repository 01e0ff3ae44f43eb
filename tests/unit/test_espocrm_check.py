"""The start-up check of EspoCRM (services/ops/espocrm_check.py) against the simulator in-process
and the fakes: each problem one line with its fix; what makes writes fail is `fail`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import fakeredis
import httpx
import pytest

from sandbox import config as cfg
from sandbox.espocrm import EspoSimulator
from services.espocrm.client import EspoCrmClient
from services.espocrm.schema import ENTITY
from services.ops import advoware_check, preflight
from services.ops.advoware_check import Finding
from services.ops.espocrm_check import FAIL, WARN, check_espocrm
from services.ops.monitor import advoware_contract_check
from services.ops.monitor import check as health_check
from tests.support.retry import RETRY_SETTINGS
from tests.support.runtime import fake_world, settings_with

WEBHOOK_IDS = {wid for wid, _ in cfg.WEBHOOKS.values()}
BASE = "http://127.0.0.1:3000"  # the sandbox's default webhook base is this service


@pytest.fixture
async def sim() -> AsyncIterator[EspoSimulator]:
    sim = EspoSimulator(cfg.SandboxConfig())
    yield sim
    await sim.dispatcher.stop()


async def problems(sim: EspoSimulator, public_url: str | None = BASE) -> list[Any]:
    settings = SimpleNamespace(
        ESPOCRM_API_BASE_URL="http://espo.test/api/v1",
        ESPOCRM_API_KEY=SimpleNamespace(get_secret_value=lambda: cfg.ESPO_API_KEY),
        ESPOCRM_API_SECRET=None,
        HTTP_TIMEOUT_SECONDS=5.0,
        **RETRY_SETTINGS,
    )
    async with EspoCrmClient(settings, transport=httpx.ASGITransport(app=sim.app)) as espo:
        return await check_espocrm(espo, webhook_ids=WEBHOOK_IDS, public_url=public_url)


async def test_a_set_up_instance_passes_and_concurrency_off_only_warns(sim: EspoSimulator) -> None:
    found = await problems(sim)
    assert [(p.level, p.message.split(" (")[0]) for p in found] == [
        (WARN, f"{ENTITY} has optimistic concurrency control off")
    ]
    assert "setup-espocrm" in found[0].line()
    sim.store.versioning.switch(True, sim.store.records.values())
    assert await problems(sim) == []


async def test_a_missing_enum_value_fails_naming_field_and_value(sim: EspoSimulator) -> None:
    defs = sim.store.defs
    options = [o for o in defs.fields["syncStatus"]["options"] if o != "excluded"]
    defs.set_field("syncStatus", {**defs.fields["syncStatus"], "options": options})
    defs.set_field("betnr", {"type": "varchar", "isCustom": True})
    defs.remove_field("titel")
    fails = [p.line() for p in await problems(sim) if p.level == FAIL]
    assert any(f.startswith(f"{ENTITY} has no field titel (varchar) - fix: run `python -m") for f in fails)
    assert any(
        "field betnr is of type varchar, the service writes int" in f and "Entity Manager" in f for f in fails
    )
    assert any("field syncStatus lacks the value(s) 'excluded'" in f and "setup-espocrm" in f for f in fails)
    assert len(fails) == 3


async def test_a_missing_fingerprint_field_only_warns_and_says_what_it_costs(sim: EspoSimulator) -> None:
    """An instance set up before the field existed: writes still pass (EspoCRM drops undefined
    attributes), so the service starts, with a warning that names the fix."""
    sim.store.versioning.switch(True, sim.store.records.values())
    sim.store.defs.remove_field("syncFingerprint")
    found = await problems(sim)
    assert [p.level for p in found] == [WARN]
    assert f"{ENTITY} has no field syncFingerprint (text)" in found[0].line()
    assert "setup-espocrm" in found[0].line()


async def test_no_entity_is_one_failure(sim: EspoSimulator) -> None:
    sim.store.defs.reset(False)
    found = await problems(sim)
    assert [(p.level, p.message) for p in found] == [(FAIL, f"EspoCRM has no entity {ENTITY}")]
    assert "espocrm-extension" in found[0].fix


async def test_webhook_problems_are_warnings_naming_the_webhook(sim: EspoSimulator) -> None:
    sim.store.versioning.switch(True, sim.store.records.values())
    hooks = {h.event.split(".")[1]: h for h in sim.dispatcher.webhooks.values()}
    hooks["create"].is_active = False
    hooks["update"].skip_own = False
    hooks["delete"].url = "https://elsewhere.example/vmh/webhook/beteiligte/delete"
    found = await problems(sim)
    assert {p.level for p in found} == {WARN}
    text = "\n".join(p.line() for p in found)
    assert f"webhook {hooks['create'].id} ({ENTITY}.create) is inactive" in text
    assert f"webhook {hooks['update'].id} ({ENTITY}.update) has skipOwn off" in text
    assert f"posts to https://elsewhere.example/vmh/webhook/beteiligte/delete, not to {BASE}" in text
    sim.dispatcher.remove(hooks["create"].id)
    text = "\n".join(p.line() for p in await problems(sim, public_url=None))
    assert f"no webhook {ENTITY}.create of the API user" in text
    assert "elsewhere.example" not in text  # without SYNC_PUBLIC_URL only the path is compared


async def test_records_without_version_number_warn_and_health_shows_the_check() -> None:
    world = fake_world()
    espo = world.espo
    rid = espo.add({"name": "A"})
    del espo.records[rid]["versionNumber"]
    found = await check_espocrm(espo, webhook_ids=set(), public_url=None)
    assert any("records come without versionNumber" in p.message for p in found)
    report = await health_check(world.rt)
    setup = report.checks["espocrm_setup"]
    assert setup.state == WARN and report.healthy
    assert any("versionNumber" in line for line in setup.detail["problems"])


def test_advoware_preflight_stops_on_what_fails_syncs_and_keeps_the_findings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The start-up check-advoware: an error stops `make serve` unless Advoware merely does not
    answer; the findings are kept in Redis and `/vmh/health` (and `status`) show them."""
    server = fakeredis.FakeServer()

    @asynccontextmanager
    async def fake_redis(_settings: Any = None) -> AsyncIterator[Any]:
        yield fakeredis.FakeAsyncRedis(server=server, decode_responses=True)

    findings: list[Finding] = []

    async def configured(_settings: Any) -> list[Finding]:
        return findings

    monkeypatch.setattr(advoware_check, "check_configured", configured)
    monkeypatch.setattr("services.runtime.open_redis", fake_redis)
    monkeypatch.setattr("services.settings.get_settings", lambda: settings_with())

    findings[:] = [Finding("error", "fields", "no `name` field: every write sends it", "fix the contract")]
    assert preflight.advoware_preflight() == preflight.EXIT_WRITES_FAIL
    assert "advoware: ERROR   fields: no `name` field" in capsys.readouterr().err
    findings[:] = [Finding("error", "login", "Advoware does not answer: 503", "start the Manager")]
    assert preflight.advoware_preflight() == preflight.EXIT_OK  # the breaker waits for it
    findings[:] = [Finding("info", "login", "ok"), Finding("warning", "rowId", "not sent", "nothing to do")]
    assert preflight.advoware_preflight() == preflight.EXIT_OK

    async def shown() -> Any:
        async with fake_redis() as redis:
            return await advoware_contract_check(redis)

    check = asyncio.run(shown())
    assert check.state == WARN and check.detail["findings"] == [
        "warning rowId: not sent - fix: nothing to do"
    ]


async def test_what_the_api_user_may_not_read_is_named_not_failed() -> None:
    from services.errors import AuthError

    world = fake_world()
    espo = world.espo

    async def forbidden() -> list[dict[str, Any]]:
        raise AuthError("GET Webhook forbidden", system="espocrm", status_code=403)

    espo.webhooks = forbidden  # type: ignore[method-assign]  # a fake patched for this test
    found = await check_espocrm(espo, webhook_ids=set(), public_url=None)
    assert [(p.level, p.message) for p in found] == [
        (
            WARN,
            "the API user may not read its webhooks (the Webhooks scope): this part of the set-up is not checked",
        )
    ]
