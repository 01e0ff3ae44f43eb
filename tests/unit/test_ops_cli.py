"""The ops CLI (`python -m services.ops`) and the ops API steps, against the in-memory fakes."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest

from services.errors import OperationError
from services.ops import cli
from services.ops.actions import parse_record_request
from services.runtime import Runtime
from services.sync.engine import SyncEngine
from tests.support.fakes import Clock, FakeAdvo, FakeEspo
from tests.support.records import espo_email
from tests.support.runtime import fake_runtime
from tests.support.steps import load_step

ROOT = Path(__file__).resolve().parents[2]
OPS_SETTINGS: dict[str, Any] = {"ESPOCRM_NOTIFY_USER_ID": "u1"}

PERSON: dict[str, Any] = {
    "beteiligterTyp": "Person",
    "salutationName": "Mrs.",
    "firstName": "Käthe",
    "lastName": "Groß",
    "name": "Käthe Groß",
    "titel": None,
    "emailAddressData": [espo_email("k@example.org")],
    "phoneNumberData": [],
}


class World:
    """Fakes that survive several `cli.main()` calls (each runs its own event loop)."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.espo = FakeEspo(self.clock)
        self.advo = FakeAdvo(self.clock)
        self.server = fakeredis.FakeServer()

    def redis(self) -> Any:
        return fakeredis.FakeAsyncRedis(server=self.server, decode_responses=True)

    def engine(self, redis: Any) -> SyncEngine:
        return self.runtime(redis).engine

    def runtime(self, redis: Any | None = None) -> Runtime:
        return fake_runtime(self.espo, self.advo, redis or self.redis(), self.clock, **OPS_SETTINGS)

    @asynccontextmanager
    async def open_runtime(self, settings: Any = None) -> AsyncIterator[Runtime]:
        """The ops CLI's runtime factory, also handed to the step handlers (`runtime=`)."""
        yield self.runtime()

    def cli(self, *argv: str) -> tuple[int, str]:
        out = io.StringIO()
        code = cli.main(list(argv), out=out, runtime_factory=self.open_runtime)
        return code, out.getvalue()

    async def alinked(self, **changes: Any) -> tuple[str, int]:
        """A pair that agrees, with a snapshot."""
        rid = self.espo.add({**PERSON, **changes})
        out = await self.engine(self.redis()).sync_record(rid)
        assert out.betnr is not None
        self.espo.calls.clear()
        self.advo.calls.clear()
        return rid, out.betnr

    def linked(self, **changes: Any) -> tuple[str, int]:
        import asyncio

        return asyncio.run(self.alinked(**changes))


@pytest.fixture
def world() -> World:
    return World()


def writes(w: World) -> int:
    return w.espo.calls["update"] + w.advo.calls["create"] + w.advo.calls["update"]


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"id": "abc"}, ("abc", None, False)),
        ({"betnr": 100001, "dryRun": True}, (None, 100001, True)),
        ({"betnr": "100001"}, (None, 100001, False)),
    ],
)
def test_record_request(body: Any, expected: tuple[Any, ...]) -> None:
    r = parse_record_request(body)
    assert (r.record_id, r.betnr, r.dry_run) == expected


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {},
        {"id": "a", "betnr": 1},
        {"id": ""},
        {"betnr": "x"},
        {"betnr": True},
        {"betnr": -1},
        {"id": "a", "dryRun": "yes"},
    ],
)
def test_bad_record_requests_are_refused(body: Any) -> None:
    with pytest.raises(OperationError):
        parse_record_request(body)


@pytest.mark.parametrize("argv", [["sync"], ["sync", "abc", "--betnr", "1"], ["unlock"], ["bogus"]])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2


def test_missing_configuration_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in ("ESPOCRM_API_BASE_URL", "ESPOCRM_API_KEY", "ADVOWARE_API_BASE_URL", "SYNC_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["status"]) == 2
    assert "configuration error" in capsys.readouterr().err


def test_help_names_every_command() -> None:
    text = cli.build_parser().format_help()
    for command in ("status", "sync", "backfill", "retry-failed", "unlock", "deletions", "sandbox.env"):
        assert command in text


# --------------------------------------------------------------------------- commands


def test_status(world: World) -> None:
    world.linked()
    world.espo.add({**PERSON, "syncStatus": "failed", "syncErrorMessage": "x"})
    code, text = world.cli("status")
    assert code == 0
    assert "clean" in text and "failed" in text and "Backfill: never run" in text
    code, raw = world.cli("--json", "status")
    report = json.loads(raw)
    assert report["counts"]["clean"] == 1 and report["counts"]["failed"] == 1
    assert "Käthe" not in raw and "k@example.org" not in raw  # ids and counts only


def test_sync_dry_run_prints_the_plan_and_writes_nothing(world: World) -> None:
    rid, betnr = world.linked()
    world.advo.edit(betnr, titel="Prof. Dr.")
    world.espo.edit(rid, firstName="Käte", name="Käte Groß")
    code, text = world.cli("sync", rid, "--dry-run")
    assert code == 0 and writes(world) == 0
    assert "dry run, nothing written" in text
    assert "title" in text and "Prof. Dr." in text and "-> EspoCRM" in text
    assert "first_name" in text and "Käte" in text and "-> Advoware" in text
    code, raw = world.cli("--json", "sync", "--betnr", str(betnr), "--dry-run")
    plan = json.loads(raw)
    assert plan["action"] == "update" and plan["basis"] == "snapshot" and writes(world) == 0
    assert {f["field"]: f["direction"] for f in plan["fields"]} == {
        "title": "to_espocrm",
        "first_name": "to_advoware",
    }


def test_sync_dry_run_of_a_new_record_shows_the_create(world: World) -> None:
    rid = world.espo.add(dict(PERSON))
    code, raw = world.cli("--json", "sync", rid, "--dry-run")
    plan = json.loads(raw)
    assert code == 0 and plan["action"] == "create" and writes(world) == 0
    assert {"first_name", "last_name", "emails"} <= {f["field"] for f in plan["fields"]}


def test_sync_now(world: World) -> None:
    rid, betnr = world.linked()
    world.advo.edit(betnr, titel="Dr.")
    code, text = world.cli("sync", "--betnr", str(betnr))
    assert code == 0 and f"record {rid}: updated" in text and "to EspoCRM: title" in text
    assert world.espo.records[rid]["titel"] == "Dr."


def test_sync_unknown_betnr_fails_cleanly(world: World, capsys: Any) -> None:
    code, _ = world.cli("sync", "--betnr", "424242")
    assert code == 1 and "no EspoCRM record is linked to betnr 424242" in capsys.readouterr().err


def test_retry_failed(world: World) -> None:
    rid1, _ = world.linked()
    rid2, _ = world.linked(lastName="Zwei", name="Käthe Zwei")
    world.espo.records[rid1].update(syncStatus="failed", syncRetryCount=3, syncErrorMessage="503")
    world.espo.records[rid2].update(syncStatus="permanently_failed", syncRetryCount=8, syncErrorMessage="x")
    code, text = world.cli("retry-failed", "--dry-run")
    assert code == 0 and "would requeue 2 of 2" in text and writes(world) == 0
    code, raw = world.cli("--json", "retry-failed")
    report = json.loads(raw)
    assert code == 0 and sorted(report["requeued"]) == sorted([rid1, rid2])
    assert {o["result"] for o in report["outcomes"]} == {"unchanged"}
    for rid in (rid1, rid2):
        rec = world.espo.records[rid]
        assert rec["syncStatus"] == "clean" and rec["syncRetryCount"] == 0 and rec["syncErrorMessage"] is None


def test_retry_failed_queue_only_leaves_the_sync_to_the_sweep(world: World) -> None:
    rid, _ = world.linked()
    world.espo.records[rid].update(syncStatus="failed", syncRetryCount=2)
    code, text = world.cli("retry-failed", "--queue-only", "--only-failed")
    assert code == 0 and "the next sweep syncs them" in text
    assert world.espo.records[rid]["syncStatus"] == "pending_sync"


def test_unlock(world: World) -> None:
    import asyncio

    async def lock() -> None:
        assert await world.engine(world.redis()).locks.acquire("abc")

    asyncio.run(lock())
    code, text = world.cli("unlock", "abc")
    assert code == 0 and "record:abc: released" in text
    code, text = world.cli("unlock", "abc", "--sweep", "--backfill")
    assert "record:abc: was not held" in text and "sweep: was not held" in text


def test_backfill_dry_run_and_run(world: World) -> None:
    world.linked()
    world.espo.add({**PERSON, "lastName": "Neu", "name": "Käthe Neu"})
    world.advo.add({"anrede": "Herr", "vorname": "Nur", "name": "Advoware"})
    code, text = world.cli("backfill", "--dry-run")
    assert code == 0 and "DRY RUN" in text and writes(world) == 0
    assert "create in Advoware  1" in text
    code, raw = world.cli("--json", "backfill")
    result = json.loads(raw)
    assert code == 0 and result["finished"] and len(result["created_in_advoware"]) == 1
    code, text = world.cli("status")
    assert "Backfill: run" in text and "finished" in text


# --------------------------------------------------------------------------- the ops API steps

ALLOWED_API_KEYS = {
    "type", "name", "description", "path", "method", "emits", "flows", "virtualEmits",
    "virtualSubscribes", "includeFiles", "middleware", "queryParams", "bodySchema", "responseSchema",
}  # fmt: skip
STEPS = sorted((ROOT / "steps" / "vmh").glob("ops_*_step.py"))


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    """For the API steps: their admin token from the settings, patched; the runtime is handed
    to each handler (`runtime=world.open_runtime`), as Motia hands none and the step opens the real one."""
    settings = SimpleNamespace(SYNC_ADMIN_TOKEN=SimpleNamespace(get_secret_value=lambda: "t0ken"))
    monkeypatch.setattr("services.settings.get_settings", lambda: settings)
    return "t0ken"


class Ctx:
    def __init__(self, emits: list[str]) -> None:
        self.emits = emits
        self.emitted: list[dict[str, Any]] = []
        self.logger = SimpleNamespace(
            info=lambda *a: None, warn=lambda *a: None, error=lambda *a: None, debug=lambda *a: None
        )

    async def emit(self, event: dict[str, Any]) -> None:
        assert event["topic"] in self.emits, event
        self.emitted.append(event)


CONSOLE_STEPS = {
    "ops_restore_api_step",
    "ops_forget_api_step",
    "ops_exclude_api_step",
    "ops_deletions_api_step",
}


def test_step_configs_are_valid() -> None:
    assert {p.name for p in STEPS} == {
        "ops_sync_record_api_step.py",
        "ops_retry_failed_api_step.py",
        "ops_unlock_api_step.py",
        "ops_relink_api_step.py",
        "ops_restore_api_step.py",
        "ops_forget_api_step.py",
        "ops_exclude_api_step.py",
        "ops_deletions_api_step.py",
    }
    for path in STEPS:
        config = load_step(path).config
        assert set(config) <= ALLOWED_API_KEYS, path
        # the Sync tab's record actions have a flow of their own (each flow stays legible)
        flow = "vmh-console" if path.stem in CONSOLE_STEPS else "vmh-ops"
        assert config["type"] == "api" and config["method"] == "POST" and config["flows"] == [flow]
        assert config["path"].startswith("/vmh/beteiligte/sync/")


@pytest.mark.parametrize("path", STEPS, ids=lambda p: p.stem)
async def test_steps_need_the_admin_token(path: Path, token: str) -> None:
    mod = load_step(path)
    for headers in ({}, {"authorization": "Bearer wrong"}):
        resp = await mod.handler({"headers": headers, "body": {"id": "x"}}, Ctx(mod.config["emits"]))
        assert resp["status"] == 401


async def test_restore_and_forget_steps(world: World, token: str) -> None:
    rid, _ = await world.alinked()
    auth = {"authorization": f"Bearer {token}"}
    restore = load_step(ROOT / "steps" / "vmh" / "ops_restore_api_step.py")
    bad = await restore.handler({"headers": auth, "body": {"id": rid}}, Ctx([]), runtime=world.open_runtime)
    assert bad["status"] == 400 and "field" in bad["body"]["error"]
    none = await restore.handler(
        {"headers": auth, "body": {"id": rid, "field": "title"}}, Ctx([]), runtime=world.open_runtime
    )
    assert none["status"] == 404 and "no conflict" in none["body"]["error"]
    forget = load_step(ROOT / "steps" / "vmh" / "ops_forget_api_step.py")
    done = await forget.handler({"headers": auth, "body": {"id": rid}}, Ctx([]), runtime=world.open_runtime)
    assert done["status"] == 200 and done["body"]["id"] == rid and done["body"]["keysDeleted"]


async def test_sync_record_step(world: World, token: str) -> None:
    rid, betnr = await world.alinked()
    world.advo.edit(betnr, titel="Dr.")
    mod = load_step(ROOT / "steps" / "vmh" / "ops_sync_record_api_step.py")
    auth = {"authorization": f"Bearer {token}"}
    bad = await mod.handler({"headers": auth, "body": {"nope": 1}}, Ctx([]), runtime=world.open_runtime)
    assert bad["status"] == 400 and "error" in bad["body"]
    missing = await mod.handler({"headers": auth, "body": {"betnr": 99}}, Ctx([]), runtime=world.open_runtime)
    assert missing["status"] == 404
    plan = await mod.handler(
        {"headers": auth, "body": {"id": rid, "dryRun": True}}, Ctx([]), runtime=world.open_runtime
    )
    assert plan["status"] == 200 and plan["body"]["fields"][0]["field"] == "title" and writes(world) == 0
    done = await mod.handler({"headers": auth, "body": {"betnr": betnr}}, Ctx([]), runtime=world.open_runtime)
    assert done["status"] == 200 and done["body"]["result"] == "updated"
    assert world.espo.records[rid]["titel"] == "Dr."


async def test_retry_failed_step_emits_sync_checks(world: World, token: str) -> None:
    rid, _ = await world.alinked()
    world.espo.records[rid].update(syncStatus="permanently_failed", syncRetryCount=8)
    mod = load_step(ROOT / "steps" / "vmh" / "ops_retry_failed_api_step.py")
    ctx = Ctx(mod.config["emits"])
    resp = await mod.handler(
        {"headers": {"authorization": f"Bearer {token}"}, "body": None}, ctx, runtime=world.open_runtime
    )
    assert resp["status"] == 200 and resp["body"]["requeued"] == [rid] and resp["body"]["events"] == 1
    assert ctx.emitted == [
        {"topic": "vmh.beteiligte.sync_check", "data": {"ids": [rid], "trigger": "sync_check"}}
    ]
    assert world.espo.records[rid]["syncStatus"] == "pending_sync"


async def test_unlock_step(world: World, token: str) -> None:
    assert await world.engine(world.redis()).locks.acquire("abc")
    mod = load_step(ROOT / "steps" / "vmh" / "ops_unlock_api_step.py")
    resp = await mod.handler(
        {"headers": {"authorization": f"Bearer {token}"}, "body": {"id": "abc"}},
        Ctx([]),
        runtime=world.open_runtime,
    )
    assert resp == {"status": 200, "body": {"released": {"record:abc": True}}}


def test_deletions_release_and_confirm(world: World) -> None:
    """The documented way out of the bulk-404 breaker."""
    import asyncio

    rid, betnr = world.linked()
    del world.advo.records[betnr]

    async def trip() -> None:
        guard = world.engine(world.redis()).deletions
        await guard.check_scan(guard.minimum, guard.minimum)  # every linked party missing
        assert not await guard.allow(rid)

    asyncio.run(trip())
    code, text = world.cli("deletions")
    assert code == 0 and "HELD since" in text and "held records: 1" in text
    code, raw = world.cli("--json", "deletions", "--confirm")
    assert code == 0 and json.loads(raw)["synced"] == {rid: "deleted_in_advoware"}
    code, text = world.cli("deletions")
    assert "not held" in text and "held records: 0" in text
